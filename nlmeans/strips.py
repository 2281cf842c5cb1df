"""Large jobs in strips: the same result, with progress and prompt interruption.

A strip of the image, grown by the settings' halo and denoised with the whole
image's settings, gives the whole image's result in the strip (crop
consistency, see :class:`~nlmeans.settings.Settings`), to float rounding. So a
long job can run strip by strip along its first spatial axis: the caller hears
after each strip how far it is, and Ctrl-C is answered between two strips
instead of after the whole image.
"""

import math

import numpy as np

# Seconds per pixel, offset pair (t and -t) and thread of the CPU kernel,
# measured on this project's 2-core Xeon at 1024²: the fused pixel-wise path,
# and the paths that keep a tile of weights (patch-wise aggregation or the
# largest-weight centre, 4.5 to 6.7 ns). Only good for "seconds or hours?".
_FUSED_SECONDS = 2.5e-9
_TILED_SECONDS = 6.5e-9


def estimated_seconds(settings, spatial_shape, threads):
    """A rough CPU time, in wall seconds on `threads` threads, of running
    `settings` on an image of `spatial_shape` (within a factor of about 2)."""
    pixels = math.prod(spatial_shape)
    total = 0.0
    for step in settings.passes:
        pairs = (math.prod(2 * r + 1 for r in step.search_radius) - 1) / 2
        fused = step.aggregation == "pixel" and step.centre_weight == "one"
        total += pixels * pairs * (_FUSED_SECONDS if fused else _TILED_SECONDS)
    return total * max(1.0, settings.channels / 3.0) / max(threads, 1)


def strip_axis(settings):
    """The axis of the caller's array that strips cut: the first spatial one."""
    return 1 if settings.channel_axis == 0 else 0


def tile_rows(settings, spatial_shape):
    """Rows (or planes, in 3-D) of the CPU kernel's tiles along the strip axis on
    an image of `spatial_shape`: a common multiple over the passes."""
    from numba import get_num_threads

    from nlmeans.backend import _tile_shape

    rows = 1
    for step in settings.passes:
        pixel_wise = step.aggregation == "pixel" and step.centre_weight == "one"
        tile = _tile_shape(settings.n_spatial, settings.channels, pixel_wise, spatial_shape,
                           get_num_threads())
        rows = math.lcm(rows, tile[0] if settings.n_spatial == 3 else tile[1])
    return rows


def strip_reach(settings, start, stop, length, align):
    """(low, high): what a strip [start, stop) must read for its result to be
    bit for bit the whole image's, not only equal to float rounding.

    The kernel's running sums start afresh at every tile, so a tile's result is
    exact only if every row it reads is: the image's own rows for the first
    pass, exact results of the previous pass for a guided one. A piece that
    starts on the whole image's tile grid (a multiple of `align`) has the same
    tiles; going back pass by pass from the strip's tiles to the tiles they
    read gives the rows needed.
    """
    low, high = start, stop
    for step in reversed(settings.passes):
        low = (low // align) * align - step.halo[0]
        high = -(-high // align) * align + step.halo[0]
    return max((low // align) * align, 0), min(high, length)


def iter_strips(image, settings, rows, bounds, backend=None):
    """Yield (start, stop, result) for consecutive strips of `rows` along the
    first spatial axis: each strip is read from `image` (anything that slices
    like an array: a NumPy array or memory map, a zarr array) grown by what its
    result reads (:func:`strip_reach`), denoised with
    :func:`nlmeans.denoise.denoise_block` and cut back, so only one strip and
    its halo are in memory at a time."""
    from functools import partial

    from nlmeans.backend import numba_pass
    from nlmeans.denoise import denoise_block

    axis = strip_axis(settings)
    spatial = tuple(n for i, n in enumerate(image.shape) if i != settings.channel_axis)
    length, align = image.shape[axis], tile_rows(settings, spatial)
    if backend is None:  # the whole image's tiles: the same sums as one run
        backend = partial(numba_pass, image_shape=((1,) + spatial)[-3:])
    rows = max(int(rows), 1)
    for start in range(0, length, rows):
        stop = min(start + rows, length)
        low, high = strip_reach(settings, start, stop, length, align)
        index = [slice(None)] * len(image.shape)
        index[axis] = slice(low, high)
        result = denoise_block(np.asarray(image[tuple(index)]), settings, bounds, backend)
        index[axis] = slice(start - low, stop - low)
        yield start, stop, result[tuple(index)]


def denoise_in_strips(image, settings, rows, progress=None, device="cpu", bounds=None):
    """``denoise(image, settings=settings)``, computed `rows` at a time along the
    first spatial axis; `progress(done, total)` is called after each strip.
    `bounds` is the image's (min, max) (measured when not given).

    The result equals the whole-image run to float rounding (integer outputs
    may differ by 1 where a value lies within rounding of .5).
    """
    from nlmeans.denoise import choose_backend

    image = np.asarray(image)
    if bounds is None:
        bounds = (image.min(), image.max())
    backend, _ = choose_backend(device, settings)
    axis = strip_axis(settings)
    out = np.empty_like(image)
    for start, stop, result in iter_strips(image, settings, rows, bounds, backend):
        index = [slice(None)] * image.ndim
        index[axis] = slice(start, stop)
        out[tuple(index)] = result
        if progress is not None:
            progress(stop, image.shape[axis])
    return out
