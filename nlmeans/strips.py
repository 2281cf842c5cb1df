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


def denoise_in_strips(image, settings, rows, progress=None, device="cpu"):
    """``denoise(image, settings=settings)``, computed `rows` at a time along the
    first spatial axis; `progress(done, total)` is called after each strip.

    The result equals the whole-image run to float rounding (integer outputs
    may differ by 1 where a value lies within rounding of .5).
    """
    from nlmeans.denoise import denoise

    image = np.asarray(image)
    axis = 1 if settings.channel_axis == 0 else 0
    length, halo = image.shape[axis], settings.halo[0]
    rows = max(int(rows), 1)
    out = np.empty_like(image)
    for start in range(0, length, rows):
        stop = min(start + rows, length)
        low, high = max(start - halo, 0), min(stop + halo, length)
        piece = np.take(image, np.arange(low, high), axis=axis)
        result = denoise(piece, settings=settings, device=device)
        inner = np.take(result, np.arange(start - low, stop - low), axis=axis)
        index = [slice(None)] * image.ndim
        index[axis] = slice(start, stop)
        out[tuple(index)] = inner
        if progress is not None:
            progress(stop, length)
    return out
