"""The in-memory runner: settings run on one array, in its own layout and dtype.

Whole images, and the pieces of strip-wise, chunk-wise and out-of-core runs,
go through :func:`denoise_block`.
"""

import numpy as np

from nlmeans.methods.passes import run_passes
from nlmeans.model.layout import as_channel_first_volume, from_channel_first_volume


def denoise_block(block, settings, bounds, backend=None, progress=None):
    """`settings` run on `block`, a piece of a larger image in the image's own
    layout, its result clipped to `bounds`, the whole image's (min, max).

    The pieces of strip-wise, chunk-wise and out-of-core runs go through here;
    a piece grown by ``settings.halo`` gives the whole image's result inside.
    A whole image with its own bounds is a block too (the CLI runs NL-Bayes so,
    with `progress`, see :func:`nlmeans.methods.passes.run_passes`).
    """
    block = np.asarray(block)
    if not settings.passes:
        return block.copy()
    volume, _ = as_channel_first_volume(block, settings.channel_axis, settings.time_axis)
    result = run_passes(volume.astype(settings.work_dtype, copy=False), settings, bounds,
                        rounded=block.dtype.kind != "f", backend=backend, progress=progress)
    return in_callers_layout(result, settings, block.dtype, bounds)


def in_callers_layout(result, settings, dtype, bounds):
    """The (C, Z, Y, X) float result in the caller's layout and dtype."""
    result = from_channel_first_volume(result, settings.channel_axis, settings.n_spatial,
                                       settings.time_axis)
    if dtype.kind in "ui" and not _exact(bounds, result.dtype):
        result = np.clip(result, *_inward(bounds, result.dtype))
    result = np.ascontiguousarray(result, dtype=dtype)
    if dtype.kind == "f" and dtype.itemsize > settings.work_dtype.itemsize:
        # float64 data computed in float32: the kernel's clip to the input's range
        # was in float32, which may round just outside it; clip again in float64.
        result = np.clip(result, *bounds, out=result)
    return result


def _exact(bounds, float_type):
    """Whether the integer `bounds` are floats of `float_type` (then the kernel's
    clip kept the result within them: 8- and 16-bit images, always)."""
    return all(int(float_type.type(b)) == int(b) for b in bounds)


def _inward(bounds, float_type):
    """The integer `bounds` as floats of `float_type` within them. The kernel clips
    to the bounds in its own precision, where a large integer rounds to the
    nearest float, possibly outside: float32(2**31 - 1) is 2**31, which the
    cast to int32 wrapped to -2**31."""
    low, high = (float_type.type(b) for b in bounds)
    if int(low) < int(bounds[0]):
        low = np.nextafter(low, float_type.type(np.inf))
    if int(high) > int(bounds[1]):
        high = np.nextafter(high, float_type.type(-np.inf))
    return low, high
