"""Large jobs in strips: the same result, with progress and prompt interruption.

A strip of the image, grown by the settings' halo and denoised with the whole
image's settings, gives the whole image's result in the strip (crop
consistency, see :class:`~nlmeans.model.settings.Settings`), bit for bit. So a
long job can run strip by strip along its first spatial axis: the caller hears
after each strip how far it is, and Ctrl-C is answered between two strips
instead of after the whole image.
"""

import math
import threading
from functools import partial

import numpy as np

from nlmeans.backends.cpu import numba_pass
from nlmeans.kernels.constants import ROW_RESTART
from nlmeans.planning.backend_choice import choose_backend
from nlmeans.runners.block import denoise_block

# The kernel's time per offset pair (t and -t) and thread, in seconds, as
# A * pixels + B * rows + C: A for each output pixel, B for each output row
# (starting a row's running sums), C for each offset (its setup over the tiles).
# Fitted (least squares on relative error) to 24 grey runs on this project's
# 2-core AMD EPYC: 64 to 2048 columns, 64 to 1024 rows, windows 15 and 41;
# within 0.85-1.22 of them. Colour costs 1.3 to 1.8 times grey: a factor
# 1 + (channels - 1) / 4. Only good for "seconds or hours?".
_FUSED_COSTS = (1.42e-9, 1.4e-7, 4.4e-5)  # the fused pixel-wise path
_TILED_COSTS = (7.8e-9, 2.3e-7, 1.1e-4)   # the paths that keep a tile of weights


def estimated_seconds(settings, spatial_shape, threads):
    """A rough CPU time, in wall seconds on `threads` threads, of running
    `settings` on an image of `spatial_shape` (within a factor of about 2 on
    the shapes of benchmarks/estimate.py)."""
    pixels = math.prod(spatial_shape)
    rows = math.prod(spatial_shape[:-1])
    total = 0.0
    for step in settings.passes:
        pairs = (math.prod(2 * r + 1 for r in step.search_radius) - 1) / 2
        fused = step.aggregation == "pixel" and step.centre_weight == "one"
        per_pixel, per_row, per_offset = _FUSED_COSTS if fused else _TILED_COSTS
        total += pairs * (per_pixel * pixels + per_row * rows + per_offset)
    return total * (1.0 + (settings.channels - 1) / 4.0) / max(threads, 1)


def strip_axis(settings):
    """The axis of the caller's array that strips cut: the first spatial one."""
    return 1 if settings.channel_axis == 0 else 0


def strip_reach(settings, start, stop, length):
    """(low, high): the rows a strip [start, stop) reads, its halo included.

    The kernel's running sums along the rows start afresh every ROW_RESTART
    rows of the image, and a sum that starts between two such rows runs from
    the one before (see nlmeans.kernels.nlm._stream_row). So above the halo, a
    strip reads the rows those sums run over: up to ROW_RESTART - 1 more rows
    per pass for the patch sums, as many again for patch-wise aggregation's box
    sums, and its first row is a multiple of ROW_RESTART: the strip's sums are
    then the whole image's, and so is its result, bit for bit."""
    reach = settings.halo[0]
    for step in settings.passes:
        reach += (ROW_RESTART - 1) * (2 if step.aggregation == "patch" else 1)
    low = max(start - reach, 0)
    return low - low % ROW_RESTART, min(stop + settings.halo[0], length)


def iter_strips(image, settings, rows, bounds, backend=None):
    """Yield (start, stop, result) for consecutive strips of `rows` along the
    first spatial axis: each strip is read from `image` (anything that slices
    like an array: a NumPy array or memory map, a zarr array) grown by the
    settings' halo, denoised with :func:`nlmeans.runners.block.denoise_block` and cut
    back, so only one strip and its halo are in memory at a time.

    Each piece runs with the whole image's tile shape and starts at a row where
    the kernel's running sums start afresh (:func:`strip_reach`), so the result
    equals the whole image's bit for bit."""
    axis = strip_axis(settings)
    spatial = tuple(n for i, n in enumerate(image.shape) if i != settings.channel_axis)
    length = image.shape[axis]
    if backend is None:  # the whole image's tiles: the same sums as one run
        backend = partial(numba_pass, image_shape=((1,) + spatial)[-3:])
    rows = max(int(rows), 1)
    for start in range(0, length, rows):
        stop = min(start + rows, length)
        low, high = strip_reach(settings, start, stop, length)
        index = [slice(None)] * len(image.shape)
        index[axis] = slice(low, high)
        result = denoise_block(np.asarray(image[tuple(index)]), settings, bounds, backend)
        index[axis] = slice(start - low, stop - low)
        yield start, stop, result[tuple(index)]


def _tile_progress(progress, length, passes):
    """A tile_done callback for the kernel that calls `progress(rows, length)` with
    the share of the passes' tiles done, as rows (less than `length` until the
    strip is done), one call at a time."""
    state = {"pass": 0, "done": 0}
    lock = threading.Lock()

    def tile_done(tiles):
        with lock:
            state["done"] += 1
            share = (state["pass"] + state["done"] / tiles) / passes
            if state["done"] == tiles:
                state["pass"], state["done"] = state["pass"] + 1, 0
            progress(min(int(share * length), length - 1), length)
    return tile_done


def denoise_in_strips(image, settings, rows, progress=None, device="cpu", bounds=None):
    """``denoise(image, settings=settings)``, computed `rows` at a time along the
    first spatial axis; `progress(done, total)` is called after each strip (and,
    for an image that is one strip, after each of the kernel's tiles).
    `bounds` is the image's (min, max) (measured when not given).

    The result equals the whole-image run bit for bit (see :func:`iter_strips`).
    """
    image = np.asarray(image)
    if bounds is None:
        bounds = (image.min(), image.max())
    backend, _ = choose_backend(device, settings)
    axis = strip_axis(settings)
    if backend is None and progress is not None and rows >= image.shape[axis]:
        # One strip (its halo covers the image): progress over the kernel's tiles.
        spatial = tuple(n for i, n in enumerate(image.shape) if i != settings.channel_axis)
        backend = partial(numba_pass, image_shape=((1,) + spatial)[-3:],
                          tile_done=_tile_progress(progress, image.shape[axis],
                                                   len(settings.passes)))
    out = np.empty_like(image)
    for start, stop, result in iter_strips(image, settings, rows, bounds, backend):
        index = [slice(None)] * image.ndim
        index[axis] = slice(start, stop)
        out[tuple(index)] = result
        if progress is not None:
            progress(stop, image.shape[axis])
    return out
