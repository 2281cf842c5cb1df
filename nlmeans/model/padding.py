"""What a pass reads beyond a volume's ends.

Every axis is mirrored (NumPy's 'reflect'), except the first axis of a volume
whose patches are flat along it (radius 0 there: the frames of a sequence,
time first). Along such an axis a mirrored plane is the plane itself, so a
pixel near the ends found its own patch, noise and all, at distance 0 in its
own window, with full weight: its noise stayed (flicker). There the k-th plane
before the first is plane ``margin + 1 - k`` and the k-th after the last is
plane ``length - 2 - margin + k``: the window's planes taken from its far
end, so that for every plane whose window reaches the padding they are other
planes of its window, never itself (when the margin is less than the length).
Reflecting put the same planes there in the reverse order, which for the
planes within half a margin of the ends meant themselves.
"""

import numpy as np


def flat_index(index, length, margin):
    """The plane read at `index` (which may lie up to `margin` beyond either end)
    of an axis of `length` planes padded for flat patches. `length` may be None
    while a stream does not know it: then `index` must not lie beyond the end."""
    if index < 0:
        plane = margin + 1 + index
        return plane if length is None else min(plane, length - 1)
    if length is not None and index >= length:
        return max(index - 1 - margin, 0)  # length - 2 - margin + k, k = index - length + 1
    return index


def pad_volume(values, widths, patch_radius, aggregation_radius):
    """`values` (C, *spatial) padded by `widths` (a (before, after) pair per axis,
    channels first) for a pass with these radii (one per spatial axis):
    mirrored, except the first axis of a volume (3 spatial axes or more) whose
    patches, and patch-wise aggregation, are flat along it (equal widths there)."""
    flat_first = values.ndim >= 4 and patch_radius[0] == 0 and aggregation_radius[0] == 0
    if not flat_first or widths[1][0] == 0:
        return np.pad(values, widths, mode="reflect")
    margin = widths[1][0]
    length = values.shape[1]
    plane_widths = [widths[0]] + list(widths[2:])
    out = np.empty([n + a + b for n, (a, b) in zip(values.shape, widths)], values.dtype)
    # Plane by plane into the result (padding the whole, then gathering its
    # planes, copied it twice: 2-3 % of a temporal run's time at 720p).
    for i, plane in enumerate(range(-margin, length + margin)):
        out[:, i] = np.pad(values[:, flat_index(plane, length, margin)], plane_widths,
                           mode="reflect")
    return out
