"""The CPU backend: one NL-means pass on the compiled Numba kernel.

A backend runs one :class:`~nlmeans.model.settings.Pass` over a channel-first float
volume (C, Z, Y, X): ``backend(values, guide, step, dtype, bounds, rounded)``.
It mirrors the volume at its borders, cuts the work into tiles, one thread
each, and returns the result clipped to `bounds` (and rounded if `rounded`).
"""

import logging

import numpy as np

from nlmeans.backends import ndpass
from nlmeans.backends.scales import kernel_scales
from nlmeans.kernels.constants import ROW_RESTART
from nlmeans.model.padding import flat_index, pad_volume

# Output tiles, one thread each; their buffers are bounded, whatever the image
# size. The plain pixel-wise filter (the kernel's fused path, which makes each
# row of weights and uses it at once) runs fastest on long rows, over which its
# per-row overhead is amortised: 1024-wide tiles took 7-11 % less time than
# 512-wide ones at 1024² (grey and RGB), 512 much less than 256. Patch-wise
# aggregation and the largest-weight centre make a whole tile of weights per
# offset and run fastest on smaller tiles: 64 rows by 512 took 9 % less time
# than 128 by 512 on grey; on RGB, 64 rows by 512 measured best at 512² and
# 1024². In 3-D, 128-wide rows beat 64 by a third. Every tile is much larger
# than usual search radii, so the pairs recomputed at tile borders cost little.
_TILE_2D_PIXEL = (1, 128, 1024)
_TILE_2D_PATCH = (1, 64, 512)
_TILE_3D = (16, 32, 256)
# 2-D patches over a 3-D window (frames and a temporal window): 4 planes of
# 64 x 1024 took 1.5 times less time than 8 x 32 x 256 on 6 frames of 720p (grey,
# automatic) and on 16 of 360x640 colour (automatic), the same on 10 of 256²;
# 8 x 64 x 1024, 4 x 128 x 1024, 4 x 64 x 512 and 2 x 64 x 1024 measured 5 to 15 %
# slower. On the fused path (pixel-wise, centre weight 1: fixed h, OpenCV's Multi)
# it took 1.4 times less time than 8 x 32 x 256 on 720p sequences, and 1.8 times
# less on OpenCV's Multi layout (one frame out of five). Long rows amortise the
# per-row work, as in 2-D.
_TILE_FRAMES = (4, 64, 1024)
# Frames: a tile's accumulators (one per channel plus the weight sum) at most
# this many values, 2 MB in float32 (the L2 cache of the Xeon measured here):
# on 6 frames of 720p colour (automatic) tiles of 4 x 32 x 640 took 0.82 of
# the time of 4 x 64 x 1024 (4 x 64 x 640 0.97, 4 x 32 x 1024 0.99, 4 x 16 x
# 640 0.91), on grey 4 x 64 x 640 0.96 (4 x 32 x 640 0.95): fewer rows for
# more channels, and columns split into equal tiles (1280 into two of 640, not
# 1024 and 256). Patch-wise aggregation and the largest-weight centre only
# (the automatic mode), whose tiles of weights per offset these are.
_FRAME_TILE_VALUES = 1 << 19
# The rows of pairs a tile computes beyond its own, on average: the mean |ty|
# of the offsets of a 21-row search window is 5.2 (a 15-row one, 3.7).
_TILE_EXTRA_ROWS = 6


def _tile_shape(n_spatial, channels, pixel_wise, spatial_shape, threads, flat_patches=False):
    """The output tile for an image of `spatial_shape` with `channels` channels,
    on `threads` threads; `pixel_wise`: the kernel's fused path (pixel-wise
    aggregation, centre weight 1); `flat_patches`: 3-D windows of 2-D patches.

    A tile holds one accumulator per channel plus the weight sum; with more
    channels the 2-D tile has fewer rows, so that its buffers stay near the size
    that measured best (RGB: 64 rows on both paths). Images with fewer than two
    tiles per thread get tiles of fewer rows (down to 32; frames down to 16), so
    that every thread has work and the last tiles even out.
    """
    if n_spatial == 3 and not flat_patches:
        return _TILE_3D
    if n_spatial == 3:
        # Frames: fewer rows (down to 16) where short sequences of small frames
        # would leave threads idle; rows, unlike columns, change no sums.
        planes, rows, width = _TILE_FRAMES
        depth, height, image_width = spatial_shape[-3:]
        if not pixel_wise:  # the fused path keeps long rows (see above)
            width = -(-image_width // -(-image_width // width))  # equal, at most 1024
            while rows > 16 and planes * rows * width * (channels + 1) > _FRAME_TILE_VALUES:
                rows //= 2
        tiles_along = -(-depth // planes) * -(-image_width // width)
        return (planes, _rows_for(threads, rows, 16, height, tiles_along), width)
    _, rows, width = _TILE_2D_PIXEL if pixel_wise else _TILE_2D_PATCH
    # Budget in rows of one accumulator: grey's tile for the pixel-wise path,
    # RGB's for the patch-wise one.
    budget = 2 * rows if pixel_wise else 4 * rows
    rows = max(16, min(rows, budget // (channels + 1)))
    # Tiles start at rows where the kernel's running sums start afresh (see
    # _kernels._stream_row), so that a tile's sums do not depend on its size.
    rows -= rows % ROW_RESTART
    height, image_width = spatial_shape[-2:]
    return (1, _rows_for(threads, rows, 32, height, -(-image_width // width)), width)


def _rows_for(threads, rows, fewest, height, tiles_along):
    """`rows` halved (not below `fewest`) until the tiles, `tiles_along` per band
    of rows, number two per thread or more; then made a little fewer where that
    evens out the threads' work (see _even_rows)."""
    while rows > fewest and -(-height // rows) * tiles_along < 2 * threads:
        rows //= 2
    return _even_rows(threads, rows, max(fewest, rows // 2), height, tiles_along)


def _even_rows(threads, rows, fewest, height, tiles_along):
    """Of the tile heights from `rows` down to `fewest` (multiples of
    ROW_RESTART), the one whose tiles, handed to the threads in turn as each is
    free, leave the busiest thread the fewest rows to compute (each tile also
    computes _TILE_EXTRA_ROWS of pairs that reach beyond it); ties go to the
    taller. 512 rows of two channels took tiles of 80 rows: seven, so that one
    thread computed four while the other waited; 64 rows make eight. With more
    than 16 tiles a thread the last one costs a thread under a sixteenth of its
    work: `rows` stays (and long sequences are not counted out tile by tile)."""
    if -(-height // rows) * tiles_along > 16 * threads:
        return rows
    best_rows, best_load = rows, None
    for candidate in range(rows, fewest - 1, -ROW_RESTART):
        loads = [0] * threads
        for first in range(0, height, candidate):
            for _ in range(tiles_along):
                free = loads.index(min(loads))
                loads[free] += min(candidate, height - first) + _TILE_EXTRA_ROWS
        if best_load is None or max(loads) < best_load:
            best_rows, best_load = candidate, max(loads)
    return best_rows


def passes_compiled(settings):
    """Whether every kernel that the settings' passes run is loaded or in Numba's
    cache (else the first call compiles it: 10 to 20 s)."""
    return all(kernel_compiled(step, settings.channels, settings.work_dtype)
               for step in settings.passes)


def kernel_compiled(step, channels, dtype):
    """Whether the kernel for `step` on `channels` channels in `dtype` is loaded
    or in Numba's cache: the exact compiled variant, asked with arguments of the
    types numba_pass gives it."""
    from nlmeans.kernels import nlm  # deferred: importing Numba costs ~0.3 s

    dtype = np.dtype(dtype)
    patch, search, aggregation_radius = _kernel_geometry(step)
    values = np.zeros((channels, 1, 1, 1), dtype=dtype)
    # Only the arguments' types matter here (terms = 1 gives the scales' types).
    threshold, inv_scale = kernel_scales(step.h, step.sigma, 1, dtype)
    entry, arguments = nlm.tile_call(
        values, values, np.zeros((1, 1, 1, channels), dtype=dtype), patch, search,
        aggregation_radius, step.centre_weight == "max", threshold, inv_scale, dtype.type(0),
        dtype.type(1), False)
    return not nlm.will_compile(entry, arguments((0, 0, 0), (1, 1, 1)))


def numba_pass(values, guide, step, dtype, bounds, rounded, image_shape=None,
               frames_padded=False, tile_done=None, positions=None):
    """Pad the (C, Z, Y, X) float volume and run the compiled kernel for `step`;
    the result is clipped to `bounds` and, if `rounded`, rounded to integers. The
    weights compare patches of `guide` (same shape) if given, else of the volume
    itself. When the volume is a piece of a larger image, `image_shape` (its
    spatial shape) makes the tiles the whole image's, so that a piece aligned
    to them computes the same sums in the same order. `frames_padded`: the
    volume already holds the step's margin along Z (the frames around a batch
    of a sequence, :mod:`nlmeans.runners.frames`), which is then not mirrored, and the
    result has the batch's frames only. `tile_done(tiles)` is called after each
    of the kernel's tiles (see :func:`nlmeans.kernels.nlm.nlmeans_kernel`).
    `positions`: frames (2-D patches along Z), where each plane of `values`
    sits, (Z, 2) (:func:`nlmeans.model.motion.frame_positions`): the windows
    follow that motion."""
    if values.ndim != 4:  # four spatial axes: the NumPy pass
        return ndpass.nd_pass(values, guide, step, dtype, bounds, rounded, frames_padded)
    from numba import get_num_threads  # deferred: importing Numba costs ~0.3 s

    from nlmeans.kernels import nlm  # deferred: importing Numba costs ~0.3 s

    work_dtype = np.dtype(dtype)
    patch, search, aggregation_radius = _kernel_geometry(step)
    margins = [(0, 0)] + [(s + p + a,) * 2 for s, p, a in zip(search, patch, aggregation_radius)]
    if positions is not None and (patch[0] > 0 or search[0] == 0):
        positions = None  # only frames (flat patches, a temporal window) follow motion
    if positions is not None and not frames_padded:
        z_margin = margins[1][0]
        positions = positions[[flat_index(i, len(positions), z_margin)
                               for i in range(-z_margin, len(positions) + z_margin)]]
    if positions is not None:
        reach = nlm.motion_reach(positions, search[0], margins[1][0])
        margins[2:] = [(m + r, m + r) for (m, _), r in zip(margins[2:], reach[1:])]
    if frames_padded:
        margins[1] = (0, 0)
    padded = np.ascontiguousarray(pad_volume(values, margins, patch, aggregation_radius),
                                  dtype=work_dtype)
    padded_guide = padded if guide is None else np.ascontiguousarray(
        pad_volume(guide, margins, patch, aggregation_radius), dtype=work_dtype)
    terms = padded_guide.shape[0] * int(np.prod([2 * p + 1 for p in patch]))
    threshold, inv_scale = kernel_scales(step.h, step.sigma, terms, work_dtype)
    tile = _tile_shape(len(step.patch_radius), values.shape[0],
                       aggregation_radius == (0, 0, 0) and step.centre_weight != "max",
                       image_shape or values.shape[1:], get_num_threads(),
                       flat_patches=patch[0] == 0)
    low, high = (work_dtype.type(b) for b in bounds)
    logger = logging.getLogger("nlmeans")
    # The check takes 0.4 ms (2 % of a 512² grey image's time): made only where
    # its message is shown.
    if logger.isEnabledFor(logging.INFO) and not kernel_compiled(
            step, padded_guide.shape[0], work_dtype):
        logger.info(
            "compiling the denoising kernel (first run only, 10 to 20 s; Numba "
            "caches it)...")
    result = nlm.nlmeans_kernel(padded, padded_guide, patch, search, aggregation_radius,
                                step.centre_weight == "max", threshold, inv_scale, tile, low,
                                high, rounded, tile_done, positions)
    # The kernel writes channel-last; a channel-first view matches `values`.
    return np.moveaxis(result, -1, 0)


def kernel_layout(step, channels, spatial_shape, threads):
    """What the kernel runs for `step` on an image of `spatial_shape` with
    `channels` channels on `threads` threads: its (z, y, x) patch, search and
    aggregation radii, its tile, and whether it takes the fused path (see
    :func:`nlmeans.kernels.nlm.nlmeans_kernel`); for a cost model."""
    patch, search, aggregation_radius = _kernel_geometry(step)
    fused = aggregation_radius == (0, 0, 0) and step.centre_weight != "max"
    shape = ((1,) + tuple(spatial_shape))[-3:]
    tile = _tile_shape(len(step.patch_radius), channels, fused, shape, threads,
                       flat_patches=patch[0] == 0)
    return patch, search, aggregation_radius, tile, fused


def _kernel_geometry(step):
    """The kernel's (z, y, x) patch, search and aggregation radii for `step`."""
    patch, search = _kernel_radii(step.patch_radius), _kernel_radii(step.search_radius)
    return patch, search, patch if step.aggregation == "patch" else (0, 0, 0)


def _kernel_radii(radii):
    """(z, y, x) radii for the kernel; 2-D images get 0 along z."""
    return (0,) + tuple(radii) if len(radii) == 2 else tuple(radii)


def kernel_is_cached(method="nlmeans"):
    """Whether the compiled kernels of `method` are loaded or in Numba's cache
    (else the first call of a missing one compiles it: NL-means has two paths,
    10 to 20 s each; NL-Bayes one, about 20 s)."""
    from nlmeans.kernels import nlm  # deferred: importing Numba costs ~0.3 s

    if method == "nlbayes":
        from nlmeans.kernels import bayes  # deferred, as nlm above

        return not nlm.will_compile(bayes.bayes_tile)
    return not any(nlm.will_compile(k) for k in (nlm._denoise_tile, nlm._fused_tile))
