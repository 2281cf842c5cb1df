"""Slow, obviously-correct NL-Bayes in float64 NumPy, for the tests.

One step, written from its description (Lebrun, Buades and Morel 2013, as
:mod:`nlmeans.methods.nlbayes` states it): patches are named by their first corner,
the search window is shifted inwards at the borders, references lie every
`stride` positions plus the last, the paste-trick marks are kept per tile of
reference positions, and groups are estimated with NumPy's linear algebra.
It shares nothing with the package's kernels; only the tile shape is taken
from the package (it decides which marks a reference sees).
"""

import itertools

import numpy as np


def reference_step(noisy, basic, step, patch, search, stride, tile, covariance=None,
                   frames=False, moves=None, block=None):
    """One NL-Bayes step of the (C, Z, Y, X) float64 `noisy` (guided by `basic`
    in step 2, None in step 1); radii, stride and tile are (z, y, x) tuples.
    `covariance`: the noise's covariance C_N over a patch's values (channel by
    channel), in place of sigma^2 I. `frames`: Z is time, and the references'
    z are taken ends first (the first, the last, the second, ...). `moves`
    ((Z, 2 R + 1, BY, BX, 2)): where the content of each `block` x `block`
    block of each frame went in the R frames before and after it; the
    candidates of a reference at z then also hold, in each other frame z' of
    its window (at most R from z), the positions within half the search radius
    (rounded up) of ref + moves[z, R + z' - z, by, bx] ((by, bx) the block of
    the reference's centre; shifted inwards at the borders) that its window
    does not hold, after the window's, frame by frame."""
    channels = noisy.shape[0]
    k = [2 * p + 1 for p in patch]
    counts = [n - w + 1 for n, w in zip(noisy.shape[1:], k)]
    refs = [sorted(set(range(0, c, s)) | {c - 1}) for c, s in zip(counts, stride)]
    if frames:
        zs = refs[0]
        refs[0] = [zs[i // 2] if i % 2 == 0 else zs[-1 - i // 2] for i in range(len(zs))]
    num = np.zeros(noisy.shape)
    weight = np.zeros(noisy.shape[1:])
    first = basic is None
    guide = noisy[:1] if first else basic
    values = guide.shape[0] * int(np.prod(k))
    shrink = step.beta * step.sigma ** 2
    flat = step.flat_area * step.sigma ** 2
    if covariance is None:
        def estimate_first(group):
            return _first_step(group, shrink, flat, step.clamp)

        def estimate_second(group, model):
            return _second_step(group, model, shrink, flat)
    else:
        size = covariance.shape[0] // channels
        blocks = [covariance[c * size:(c + 1) * size, c * size:(c + 1) * size]
                  for c in range(channels)]

        def estimate_first(group):
            return _covariance_first(group, blocks, covariance, step.beta, step.flat_area,
                                     step.clamp)

        def estimate_second(group, model):
            return _covariance_second(group, model, covariance, step.beta, step.flat_area)

    def patch_at(image, p):
        return image[:, p[0]:p[0] + k[0], p[1]:p[1] + k[1], p[2]:p[2] + k[2]]

    for corner in itertools.product(*[range(0, c, t) for c, t in zip(counts, tile)]):
        inside = [range(a, min(a + t, c)) for a, t, c in zip(corner, tile, counts)]
        estimated = set()
        for ref in itertools.product(*[[r for r in rs if r in box] for rs, box in
                                       zip(refs, inside)]):
            if ref in estimated:
                continue
            windows = []
            for p, r, c in zip(ref, search, counts):
                lo = min(max(p - r, 0), max(c - 1 - 2 * r, 0))
                windows.append(range(lo, min(lo + 2 * r, c - 1) + 1))
            candidates = list(itertools.product(*windows))
            if moves is not None:
                candidates += _moved_candidates(ref, windows, search, counts, moves, block, k)
            distances = np.array([np.sum((patch_at(guide, ref) - patch_at(guide, q)) ** 2)
                                  for q in candidates])
            order = np.argsort(distances, kind="stable")
            n = min(step.group_size, len(order))
            within = int(np.sum(distances < step.tau * values))
            if step.group_size < step.group_cap < within:  # the group_cap closest
                n = min(step.group_cap, len(order))
            else:
                while n < len(order) and distances[order[n]] < step.tau * values:
                    n += 1
            members = [candidates[i] for i in order[:n]]
            group = np.stack([patch_at(noisy, q).reshape(channels, -1) for q in members])
            if first:
                estimates = estimate_first(group)
            else:
                model = np.stack([patch_at(basic, q).reshape(channels, -1) for q in members])
                estimates = estimate_second(group, model)
            for q, estimate in zip(members, estimates):
                region = (slice(None),) + tuple(slice(a, a + w) for a, w in zip(q, k))
                num[region] += estimate.reshape((channels,) + tuple(k))
                weight[region[1:]] += 1
                estimated.add(q)
                for axis, delta in itertools.product(range(3), (-1, 1)):
                    if k[axis] == 1:  # a neighbour along it shares no pixel
                        continue
                    neighbour = list(q)
                    neighbour[axis] += delta
                    estimated.add(tuple(neighbour))
    fallback = noisy if first else basic
    return np.where(weight > 0, num / np.maximum(weight, 1), fallback)


def _moved_candidates(ref, windows, search, counts, moves, block, k):
    """The moved windows' candidates (see reference_step), in order."""
    out = []
    span = moves.shape[1] // 2
    assert all(abs(z - ref[0]) <= span for z in windows[0])
    at = [min((ref[axis] + k[axis] // 2) // block, moves.shape[axis + 1] - 1)
          for axis in (1, 2)]
    for z in windows[0]:
        if z == ref[0]:
            continue
        boxes = []
        for axis in (1, 2):
            r = -(-search[axis] // 2)
            centre = ref[axis] + moves[ref[0], span + z - ref[0], at[0], at[1], axis - 1]
            lo = min(max(centre - r, 0), max(counts[axis] - 1 - 2 * r, 0))
            boxes.append(range(lo, min(lo + 2 * r, counts[axis] - 1) + 1))
        out += [(z, y, x) for y in boxes[0] for x in boxes[1]
                if y not in windows[1] or x not in windows[2]]
    return out


def _first_step(group, shrink, flat, clamp=False):
    """(n, C, K) noisy group -> estimates: each channel on its own (gains clamped
    to [0, 1] with `clamp`)."""
    channels = group.shape[1]
    if sum(group[:, c].var(ddof=1) for c in range(channels)) < flat * channels:
        return np.broadcast_to(group.mean(axis=(0, 2))[None, :, None], group.shape)
    if clamp:
        return np.stack([_clamped_bayes(group[:, c], shrink) for c in range(channels)], axis=1)
    return np.stack([_bayes(group[:, c], group[:, c], 0.0, shrink)
                     for c in range(channels)], axis=1)


def _second_step(group, model, shrink, flat):
    """(n, C, K) noisy and basic groups -> estimates: the channels together."""
    channels = group.shape[1]
    if sum(group[:, c].var(ddof=1) for c in range(channels)) < flat * channels:
        return np.broadcast_to(model.mean(axis=(0, 2))[None, :, None], group.shape)
    n = group.shape[0]
    return _bayes(group.reshape(n, -1), model.reshape(n, -1), shrink, shrink).reshape(group.shape)


def _bayes(noisy, model, diagonal, shrink):
    """x - shrink * A^-1 (x - mean) for every row x, A the covariance of the rows
    of `model` plus `diagonal` I (rows left as they are if A is not positive
    definite)."""
    n, d = noisy.shape
    centred = model - model.mean(axis=0)
    covariance = centred.T @ centred / max(n - 1, 1) + diagonal * np.eye(d)
    try:
        np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        return noisy
    deviations = noisy - noisy.mean(axis=0)
    return noisy - shrink * np.linalg.solve(covariance, deviations.T).T


def _clamped_bayes(noisy, shrink):
    """m + (C - shrink I) C^-1 (x - m) for every row x, C the rows' covariance, in
    C's eigenbasis with each factor (lambda - shrink) / lambda clamped to [0, 1]."""
    n, _ = noisy.shape
    mean = noisy.mean(axis=0)
    centred = noisy - mean
    values, vectors = np.linalg.eigh(centred.T @ centred / max(n - 1, 1))
    factors = np.where(values > shrink, (values - shrink) / np.where(values > 0, values, 1), 0.0)
    return mean + centred @ (vectors * factors) @ vectors.T


def _flat(group, covariance, gamma):
    """The flat-area rule with C_N: the channels' variances, summed, below gamma
    times C_N's mean variance per value, per channel."""
    channels = group.shape[1]
    return sum(group[:, c].var(ddof=1) for c in range(channels)) \
        < gamma * np.trace(covariance) / len(covariance) * channels


def _covariance_first(group, blocks, covariance, beta, gamma, clamp):
    """Step 1, each channel: m + (C - beta C_N) C^-1 (x - m); clamped: the gains
    of the generalised eigenproblem C v = lambda C_N v, max(lambda - beta, 0) /
    lambda, through C_N's Cholesky factor L: m + L V diag(f) V^T L^-1 (x - m)."""
    channels = group.shape[1]
    if _flat(group, covariance, gamma):
        return np.broadcast_to(group.mean(axis=(0, 2))[None, :, None], group.shape)
    out = np.empty(group.shape)
    for c in range(channels):
        x = group[:, c]
        n = x.shape[0]
        mean = x.mean(axis=0)
        centred = x - mean
        own = centred.T @ centred / max(n - 1, 1)
        if clamp:
            factor = np.linalg.cholesky(blocks[c])
            inverse = np.linalg.inv(factor)
            values, vectors = np.linalg.eigh(inverse @ own @ inverse.T)
            gains = np.where(values > beta, (values - beta) / np.where(values > 0, values, 1), 0)
            gain = factor @ (vectors * gains) @ vectors.T @ inverse
        else:
            gain = (own - beta * blocks[c]) @ np.linalg.inv(own)
        out[:, c] = mean + centred @ gain.T
    return out


def _covariance_second(group, model, covariance, beta, gamma):
    """Step 2, the channels together: m + C_b (C_b + beta C_N)^-1 (x - m)."""
    channels, size = group.shape[1:]
    n = group.shape[0]
    if _flat(group, covariance, gamma):
        return np.broadcast_to(model.mean(axis=(0, 2))[None, :, None], group.shape)
    x = group.reshape(n, -1)
    centred = model.reshape(n, -1) - model.reshape(n, -1).mean(axis=0)
    basic = centred.T @ centred / max(n - 1, 1)
    mean = x.mean(axis=0)
    gain = basic @ np.linalg.inv(basic + beta * covariance)
    return (mean + (x - mean) @ gain.T).reshape(group.shape)
