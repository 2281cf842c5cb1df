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

from nlmeans.backends.cpu import kernel_layout, numba_pass
from nlmeans.kernels.constants import ROW_RESTART
from nlmeans.planning.backend_choice import choose_backend
from nlmeans.runners.block import denoise_block

# The kernel's time, per thread, as A * weights + P * planes + B * accumulations
# + C * rows + D * setups (see kernel_work), plus E per pass: A for each weight
# w(p, p + t) made, P for each element of 3-D patches' plane sums, B for each
# output pixel receiving a candidate, C for each row of weights started (its
# running sums), D for each offset's setup over a tile, E for the pass's fixed
# cost (padding, threads). Fitted (least squares on relative error, `python
# benchmarks/estimate.py --fit`) on this project's 2-core AMD EPYC to 21 grey
# runs per path, 64 to 2048 rows and columns, 2-D and 3-D, windows from 5 to
# wider than the image: within 0.82-1.35 of them
# (benchmarks/results/estimate_fit.md). Colour costs 1.3 to 1.8 times
# grey: a factor 1 + (channels - 1) / 4. Only good for "seconds or hours?".
_FUSED_COSTS = (8.99e-10, 1.86e-09, 3.97e-11, 1.56e-07, 0.0, 8.65e-04)  # fused pixel-wise
_TILED_COSTS = (8.14e-10, 1.16e-09, 1.94e-09, 2.14e-07, 0.0, 1.40e-03)  # a tile of weights


def kernel_work(step, channels, spatial_shape, threads):
    """(weights, planes, accumulations, rows, setups, fused, tiles): the kernel's work for
    one pass `step` on an image of `spatial_shape`, summed over its tiles and
    half offsets t (each pair p, p + t is made once per tile).

    For a tile of n_z x n_y x n_x output pixels and aggregation radius a, the
    kernel makes the weights of the box of references the tile needs, grown by
    |t|: prod(n_k + 2 a_k + |t_k|) weights in prod over z, y of (n_k + 2 a_k +
    |t_k|) rows; each tile pixel then receives two candidates (p + t and p - t).
    A window as wide as the image thus costs up to four times its pairs times
    the pixels. The sums are separable: per axis, over the tiles along it and
    the offsets -r..r, of n + 2a + |t|, which is (2r + 1)(n + 2a) + r(r + 1).
    3-D patches first sum the squared differences over the patch's planes, one
    per element of the box grown by the patch (_plane_sums): the planes term.
    Four spatial axes run on the NumPy pass (no tiles): pairs x pixels weights."""
    if len(spatial_shape) > 3:
        pairs = (math.prod(2 * r + 1 for r in step.search_radius) - 1) / 2
        pixels = math.prod(spatial_shape)
        return (pairs * pixels, 0.0, 2 * pairs * pixels, pairs * pixels / spatial_shape[-1],
                pairs, False, 1)
    patch, search, aggregation, tile, fused = kernel_layout(step, channels, spatial_shape,
                                                           threads)
    shape = ((1,) + tuple(spatial_shape))[-3:]
    lengths = [[min(t, n - s) for s in range(0, n, t)] for n, t in zip(shape, tile)]

    def box_sums(grow):
        """Per axis, the sum over tiles of the box's length + grow: all t, t = 0."""
        full = [sum((2 * r + 1) * (m + 2 * a + g) + r * (r + 1) for m in sizes)
                for sizes, r, a, g in zip(lengths, search, aggregation, grow)]
        centre = [sum(m + 2 * a + g for m in sizes)
                  for sizes, a, g in zip(lengths, aggregation, grow)]
        return full, centre

    full, centre = box_sums((0, 0, 0))
    offsets = math.prod(2 * r + 1 for r in search)
    tiles = math.prod(len(sizes) for sizes in lengths)
    x_tiles = len(lengths[2])
    weights = (math.prod(full) - math.prod(centre)) / 2
    planes = 0.0
    if patch[0] > 0:
        grown, grown_centre = box_sums((2 * patch[0], 2 * patch[1], 2 * patch[2]))
        planes = (math.prod(grown) - math.prod(grown_centre)) / 2
    rows = (full[0] * full[1] * (2 * search[2] + 1) - centre[0] * centre[1]) * x_tiles / 2
    pairs = (offsets - 1) / 2
    sweeps = 1 if fused else 2 if any(aggregation) or step.centre_weight == "max" else 1
    return (sweeps * weights, sweeps * planes, 2 * pairs * math.prod(shape), sweeps * rows,
            pairs * tiles, fused, tiles)


def estimated_seconds(settings, spatial_shape, threads):
    """A rough time, in wall seconds on `threads` threads, of running
    `settings` on an image of `spatial_shape` (within a factor of 2 on the
    shapes of benchmarks/estimate.py)."""
    total = 0.0
    for step in settings.passes:
        *work, fused, tiles = kernel_work(step, settings.channels, spatial_shape, threads)
        *costs, per_pass = _FUSED_COSTS if fused else _TILED_COSTS
        seconds = sum(c * w for c, w in zip(costs, work))
        total += seconds / max(min(threads, tiles), 1) + per_pass
    return total * (1.0 + (settings.channels - 1) / 4.0)


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
