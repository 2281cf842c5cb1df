"""An even sample of a large image, for the measurements that decide the settings.

The noise model and the data range are medians and percentiles: they cannot be
accumulated strip by strip, and measuring them on a whole large image costs
more memory than denoising it in pieces (a float64 copy, 8 bytes a pixel). An
image above ``SAMPLE_FROM`` pixels (per channel) is therefore measured on an
even sample of it, in memory as out of core, so that ``denoise`` of a NumPy
array, of a dask array and of a file streamed in strips all decide the same
settings:

- a 2-D image: a grid of ``SAMPLE_GRID`` x ``SAMPLE_GRID`` tiles of
  ``SAMPLE_TILE`` pixels, evenly spaced from corner to corner, stacked along a
  new first axis; the noise level is then the median of the tiles' levels, as
  a volume's is the median of its slices';
- a volume: as many evenly spaced whole slices as fit in ``SAMPLE_FROM``
  voxels (at least one).

4 million pixels leave the median of 64 tile levels within about 1 % of the
whole image's level on white noise.
"""

import math

import numpy as np

SAMPLE_FROM = 4096 * 4096
SAMPLE_TILE = 256
SAMPLE_GRID = 8


def _spread(length, size, count):
    """`count` starts of windows of `size` spread evenly over `length` (first and
    last flush with the ends; repeated starts dropped)."""
    if count == 1 or length <= size:
        return [0]
    return sorted({round(i * (length - size) / (count - 1)) for i in range(count)})


def sample_regions(shape, channel_axis):
    """The regions (tuples of slices, in the image's own layout) of the even
    sample of an image of `shape`, or None when the whole image is measured."""
    ndim = len(shape)
    axis = None if channel_axis is None else channel_axis % ndim
    spatial = [i for i in range(ndim) if i != axis]
    if math.prod(shape[i] for i in spatial) <= SAMPLE_FROM:
        return None
    regions = []
    if len(spatial) == 3:
        depth, plane = shape[spatial[0]], shape[spatial[1]] * shape[spatial[2]]
        count = min(depth, max(1, SAMPLE_FROM // plane))
        for start in _spread(depth, 1, count):
            index = [slice(None)] * ndim
            index[spatial[0]] = slice(start, start + 1)
            regions.append(tuple(index))
        return regions
    rows, cols = shape[spatial[0]], shape[spatial[1]]
    tile_rows, tile_cols = min(SAMPLE_TILE, rows), min(SAMPLE_TILE, cols)
    for top in _spread(rows, tile_rows, SAMPLE_GRID):
        for left in _spread(cols, tile_cols, SAMPLE_GRID):
            index = [slice(None)] * ndim
            index[spatial[0]] = slice(top, top + tile_rows)
            index[spatial[1]] = slice(left, left + tile_cols)
            regions.append(tuple(index))
    return regions


def assemble(pieces, shape, channel_axis):
    """(sample array, its channel axis) from the pieces read at
    :func:`sample_regions`: 2-D tiles stacked along a new first axis, volume
    slices joined along the slice axis."""
    ndim = len(shape)
    axis = None if channel_axis is None else channel_axis % ndim
    n_spatial = ndim - (axis is not None)
    if n_spatial == 3:
        first = 1 if axis == 0 else 0
        return np.concatenate(pieces, axis=first), axis
    return np.stack(pieces), None if axis is None else axis + 1


def take_sample(image, channel_axis):
    """(sample, channel axis) of an in-memory image, or (image, channel_axis)
    itself when it is small enough to be measured whole."""
    regions = sample_regions(image.shape, channel_axis)
    if regions is None:
        return image, channel_axis
    return assemble([image[r] for r in regions], image.shape, channel_axis)
