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

from nlmeans.backend import decay_scale


def nd_pass(values, guide, step, dtype, bounds, rounded, frames_padded=False):
    """`step` run over the channel-first (C, *spatial) float array `values`,
    clipped to `bounds` and, if `rounded`, rounded; weights compare patches of
    `guide` if given. `frames_padded`: the first spatial axis already holds the
    step's margin (see :func:`nlmeans.backend.numba_pass`)."""
    work = np.dtype(dtype)
    n = values.ndim - 1
    patch, search = tuple(step.patch_radius), tuple(step.search_radius)
    aggregation = patch if step.aggregation == "patch" else (0,) * n
    margin = step.halo  # search + patch (+ patch again, patch-wise) per axis
    widths = [(0, 0)] + [(m, m) for m in margin]
    if frames_padded:
        widths[1] = (0, 0)
    padded = np.pad(values, widths, mode="reflect").astype(work, copy=False)
    compared = padded if guide is None else \
        np.pad(guide, widths, mode="reflect").astype(work, copy=False)
    shape = tuple(size - 2 * m for size, m in zip(padded.shape[1:], margin))
    # References: the output grown by the aggregation radius (patch-wise, their
    # patches cover the output), in padded coordinates.
    lo = tuple(m - a for m, a in zip(margin, aggregation))
    ref_shape = tuple(size + 2 * a for size, a in zip(shape, aggregation))
    terms = compared.shape[0] * int(np.prod([2 * p + 1 for p in patch]))
    threshold = 2.0 * step.sigma ** 2 * terms
    scale = decay_scale(step.h, terms, work)  # the kernel's, less its base-2 factor
    offsets = [t for t in itertools.product(*[range(-s, s + 1) for s in search]) if any(t)]

    # Patch-wise aggregation and the largest-weight centre visit every offset
    # two or three times: its weights are kept when they all fit in 64 MB.
    memo = {} if len(offsets) * np.prod(ref_shape) * work.itemsize <= 64 * 2**20 else None

    def weights(t):
        if memo is not None and t in memo:
            return memo[t]
        result = _weights(compared, lo, ref_shape, t, patch, threshold, scale)
        if memo is not None:
            memo[t] = result
        return result

    centre = np.ones(ref_shape, work)
    if step.centre_weight == "max":
        centre[:] = 0
        for t in offsets:
            np.maximum(centre, weights(t), out=centre)
    inner = tuple(slice(m, m + size) for m, size in zip(margin, shape))
    acc = np.zeros((values.shape[0],) + shape, work)
    total = np.zeros(shape, work)
    if any(aggregation):
        norm = centre.copy()
        for t in offsets:
            norm += weights(t)
        bad = norm <= 0  # every weight underflowed: keep the pixel
        centre[bad], norm[bad] = 1, 1
        inverse = 1 / norm
        pairs = [(t, lambda t=t: weights(t) * inverse) for t in offsets]
        pairs.append(((0,) * n, lambda: centre * inverse))
        for t, share in pairs:
            spread = _box_sum(share(), aggregation)  # over the references whose patch covers q
            _add(acc, total, spread, padded, inner, t)
    else:
        for t in offsets:
            _add(acc, total, weights(t), padded, inner, t)
        _add(acc, total, centre, padded, inner, (0,) * n)
    kept = total <= 0
    total[kept] = 1
    out = acc / total
    if kept.any():
        out[:, kept] = padded[(slice(None),) + inner][:, kept]
    np.clip(out, *bounds, out=out)
    return np.rint(out, out=out) if rounded else out


def _weights(compared, lo, shape, t, patch, threshold, scale):
    """w(r, r + t) for the references r in the box [lo, lo + shape) (padded coordinates)."""
    here = tuple(slice(a - p, a + size + p) for a, size, p in zip(lo, shape, patch))
    there = tuple(slice(a - p + d, a + size + p + d) for a, size, p, d in zip(lo, shape, patch, t))
    squares = ((compared[(slice(None),) + here] - compared[(slice(None),) + there]) ** 2).sum(0)
    distance = _box_sum(squares, patch)
    weights = np.exp(-np.maximum(distance - threshold, 0) * scale)
    # Below the smallest normal number, 0, as in the kernel.
    weights[weights < np.finfo(weights.dtype).tiny] = 0
    return weights


def _box_sum(array, radii):
    """Sums over the boxes of (2 r + 1) along each axis that fit in `array` (the
    result is 2 r smaller along each axis)."""
    for axis, r in enumerate(radii):
        length = array.shape[axis] - 2 * r
        total = None
        for k in range(2 * r + 1):
            index = [slice(None)] * array.ndim
            index[axis] = slice(k, k + length)
            part = array[tuple(index)]
            total = part.copy() if total is None else total + part
        array = total
    return array


def _add(acc, total, weight, padded, inner, t):
    """acc += weight * v(q + t) and total += weight over the output positions q."""
    shifted = tuple(slice(s.start + d, s.stop + d) for s, d in zip(inner, t))
    acc += weight * padded[(slice(None),) + shifted]
    total += weight
