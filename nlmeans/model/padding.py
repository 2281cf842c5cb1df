"""What a pass reads beyond a volume's ends.

Every axis is mirrored (NumPy's 'reflect'), except the first axis of a volume
whose patches are flat along it (radius 0 there: the frames of a sequence,
time first). Along such an axis a mirrored plane is the plane itself, so a
pixel near the ends found its own patch, noise and all, at distance 0 in its
own window, with full weight: frame 1 of a sequence with a 5-frame window kept
its noise, 3 dB below its neighbours (flicker). There a plane k before the
first reads plane ``min(margin + k, length - 1)`` and one k after the last
reads ``max(length - 1 - margin - k, 0)``: planes beyond the window of every
plane whose window reaches the padding, so that no plane meets itself (when
the margin is less than the length). Planes of the sequence may still be met
twice, as with any padding.
"""

import numpy as np


def flat_index(index, length, margin):
    """The plane read at `index` (which may lie up to `margin` beyond either end)
    of an axis of `length` planes padded for flat patches. `length` may be None
    while a stream does not know it: then `index` must not lie beyond the end
    and planes up to 2 * margin must exist."""
    if index < 0:
        plane = margin - index
        return plane if length is None else min(plane, length - 1)
    if length is not None and index >= length:
        return max(2 * (length - 1) - margin - index, 0)
    return index


def pad_volume(values, widths, flat_first=False):
    """`values` (C, *spatial) padded by `widths` (a (before, after) pair per axis,
    channels first): mirrored, or, with `flat_first`, the first spatial axis
    padded for flat patches (equal widths there)."""
    if not flat_first or widths[1][0] == 0:
        return np.pad(values, widths, mode="reflect")
    margin = widths[1][0]
    mirrored = np.pad(values, [widths[0], (0, 0)] + list(widths[2:]), mode="reflect")
    length = values.shape[1]
    planes = [flat_index(i, length, margin) for i in range(-margin, length + margin)]
    return mirrored[:, planes]
