"""One NL-means pass over any number of spatial axes, in NumPy: 4-D volumes
(W, Z, Y, X) and sequences of volumes (T, Z, Y, X), which the compiled kernel
(three axes) does not take.

Each offset t of the search window is handled for every position at once: the
squared differences between the image and its shift by t, summed over the
channels and then over the patch (a box sum along each axis), give the patch
distances d²(r, r + t) of all references r; their weights then add the shifted
values to the references' sums. The formula, the mirroring at the borders, the
patch-wise aggregation and the largest-weight centre are the kernel's; the
arithmetic is vectorised over positions instead of streamed, so it is slower
per voxel and holds a few copies of the image, but it has no limit on the
number of axes. Precision: the run's dtype throughout (float32 by default),
tested against the float64 reference.
"""

import itertools

import numpy as np

from nlmeans.backends.scales import decay_scale
from nlmeans.model.padding import pad_volume

# The size of a group of offsets' difference arrays (see nd_pass).
_GROUP_BYTES = 1 << 18


def nd_pass(values, guide, step, dtype, bounds, rounded, frames_padded=False):
    """`step` run over the channel-first (C, *spatial) float array `values`,
    clipped to `bounds` and, if `rounded`, rounded; weights compare patches of
    `guide` if given. `frames_padded`: the first spatial axis already holds the
    step's margin (see :func:`nlmeans.backends.cpu.numba_pass`)."""
    work = np.dtype(dtype)
    n = values.ndim - 1
    patch, search = tuple(step.patch_radius), tuple(step.search_radius)
    aggregation = patch if step.aggregation == "patch" else (0,) * n
    margin = step.halo  # search + patch (+ patch again, patch-wise) per axis
    widths = [(0, 0)] + [(m, m) for m in margin]
    if frames_padded:
        widths[1] = (0, 0)
    padded = pad_volume(values, widths, patch, aggregation).astype(work, copy=False)
    compared = padded if guide is None else \
        pad_volume(guide, widths, patch, aggregation).astype(work, copy=False)
    shape = tuple(size - 2 * m for size, m in zip(padded.shape[1:], margin))
    # References: the output grown by the aggregation radius (patch-wise, their
    # patches cover the output), in padded coordinates.
    lo = tuple(m - a for m, a in zip(margin, aggregation))
    ref_shape = tuple(size + 2 * a for size, a in zip(shape, aggregation))
    terms = compared.shape[0] * int(np.prod([2 * p + 1 for p in patch]))
    threshold = 2.0 * step.sigma ** 2 * terms
    scale = decay_scale(step.h, terms, work)  # the kernel's, less its base-2 factor
    offsets = [t for t in itertools.product(*[range(-s, s + 1) for s in search]) if any(t)]
    # Offsets go in groups whose difference arrays fill about 256 kB: one array
    # operation then serves many offsets (small images spend their time in the
    # operations' fixed costs), and a group stays in the core's cache.
    compared_size = int(np.prod([size + 2 * p for size, p in zip(ref_shape, patch)]))
    per_group = max(1, _GROUP_BYTES // (compared_size * work.itemsize))
    groups = [tuple(offsets[i:i + per_group]) for i in range(0, len(offsets), per_group)]

    # Patch-wise aggregation and the largest-weight centre visit every offset
    # two or three times: its weights are kept when they all fit in 64 MB.
    memo = {} if len(offsets) * np.prod(ref_shape) * work.itemsize <= 64 * 2**20 else None

    def weights(group):
        """The weights of the offsets in `group`, stacked: (len(group), *ref_shape)."""
        if memo is not None and group in memo:
            return memo[group]
        result = _weights(compared, lo, ref_shape, group, patch, threshold, scale)
        if memo is not None:
            memo[group] = result
        return result

    centre = np.ones(ref_shape, work)
    if step.centre_weight == "max":
        centre[:] = 0
        for group in groups:
            np.maximum(centre, weights(group).max(0), out=centre)
    inner = tuple(slice(m, m + size) for m, size in zip(margin, shape))
    acc = np.zeros((values.shape[0],) + shape, work)
    total = np.zeros(shape, work)
    if any(aggregation):
        norm = centre.copy()
        for group in groups:
            norm += weights(group).sum(0)
        bad = norm <= 0  # every weight underflowed: keep the pixel
        centre[bad], norm[bad] = 1, 1
        inverse = 1 / norm
        # Each reference's share spreads over the pixels its patch covers.
        for group in groups + [((0,) * n,)]:
            shares = weights(group) * inverse if any(group[0]) else (centre * inverse)[None]
            spread = _box_sum(shares, aggregation, lead=1)
            for t, weight in zip(group, spread):
                _add(acc, total, weight, padded, inner, t)
    else:
        for group in groups:
            for t, weight in zip(group, weights(group)):
                _add(acc, total, weight, padded, inner, t)
        _add(acc, total, centre, padded, inner, (0,) * n)
    kept = total <= 0
    total[kept] = 1
    out = acc / total
    if kept.any():
        out[:, kept] = padded[(slice(None),) + inner][:, kept]
    np.clip(out, *bounds, out=out)
    return np.rint(out, out=out) if rounded else out


def _weights(compared, lo, shape, group, patch, threshold, scale):
    """w(r, r + t) for the references r in the box [lo, lo + shape) (padded
    coordinates), for each offset t in `group`: (len(group), *shape)."""
    here = tuple(slice(a - p, a + size + p) for a, size, p in zip(lo, shape, patch))
    squares = np.empty((len(group),) + tuple(s.stop - s.start for s in here), compared.dtype)
    for square, t in zip(squares, group):
        there = tuple(slice(s.start + d, s.stop + d) for s, d in zip(here, t))
        if len(compared) == 1:
            np.subtract(compared[0][here], compared[0][there], out=square)
        else:
            difference = compared[(slice(None),) + here] - compared[(slice(None),) + there]
            difference *= difference
            difference.sum(0, out=square)
    if len(compared) == 1:
        squares *= squares
    # exp(-max(d² - threshold, 0) * scale), in place.
    weights = _box_sum(squares, patch, lead=1)
    weights -= threshold
    np.maximum(weights, 0, out=weights)
    weights *= -scale
    np.exp(weights, out=weights)
    # Below the smallest normal number, 0, as in the kernel.
    weights *= weights >= np.finfo(weights.dtype).tiny
    return weights


def _box_sum(array, radii, lead=0):
    """Sums over the boxes of (2 r + 1) along each axis after the first `lead`
    ones that fit in `array` (the result is 2 r smaller along each such axis; a
    new array)."""
    for axis, r in enumerate(radii, start=lead):
        array = _window_sum(array, axis, 2 * r + 1)
    return array if any(radii) else array.copy()


def _window_sum(array, axis, width):
    """Sums of `width` consecutive entries along `axis`, built from sums of 1, 2,
    4, ... entries (one addition per doubling and per bit of `width`: 4 for a
    width of 9 instead of 8), each addition a whole-array operation."""
    def part(block, start, length):
        index = [slice(None)] * block.ndim
        index[axis] = slice(start, start + length)
        return block[tuple(index)]

    if width == 1:
        return array
    length = array.shape[axis] - width + 1
    pieces, done, block, size = [], 0, array, 1
    while True:
        if width & size:  # this block's sums cover entries [done, done + size)
            pieces.append(part(block, done, length))
            done += size
        if 2 * size > width:
            break
        block = part(block, 0, block.shape[axis] - size) + part(block, size,
                                                                 block.shape[axis] - size)
        size *= 2
    total = pieces[0] + pieces[1] if len(pieces) > 1 else pieces[0].copy()  # (even widths)
    for piece in pieces[2:]:
        total += piece
    return total


def _add(acc, total, weight, padded, inner, t):
    """acc += weight * v(q + t) and total += weight over the output positions q."""
    shifted = tuple(slice(s.start + d, s.stop + d) for s, d in zip(inner, t))
    acc += weight * padded[(slice(None),) + shifted]
    total += weight


def numpy_pass(values, guide, step, dtype, bounds, rounded):
    """:func:`nlmeans.backends.cpu.numba_pass` computed by :func:`nd_pass` (NumPy,
    in `dtype`): the same formula, equal to float rounding, with no compiled
    code to load."""
    if len(step.patch_radius) == 3:
        return nd_pass(values, guide, step, dtype, bounds, rounded)
    flat = nd_pass(values[:, 0], None if guide is None else guide[:, 0], step, dtype, bounds,
                   rounded)
    return flat[:, None]
