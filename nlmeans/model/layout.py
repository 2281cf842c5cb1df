"""The caller's array as a channel-first volume (C, Z, Y, X), and back."""

import math
import numbers

import numpy as np


def check_image(image):
    """`image` as an array with (min, max) of its values; ValueError for an array
    that cannot be denoised."""
    image = np.asarray(image)
    check_pixel_type(image.dtype, image.shape)
    # The input's range: the result is clipped to it. NaN propagates into the
    # minimum and inf is an extreme, so the two reductions also check the values.
    bounds = (image.min(), image.max())
    check_finite(bounds, image.dtype)
    return image, bounds


def check_pixel_type(dtype, shape):
    """ValueError for pixels of a type that cannot be denoised, or none at all."""
    if dtype.kind not in "uif":
        raise ValueError(f"image must have an integer or floating-point dtype, got {dtype}")
    if math.prod(shape) == 0:
        raise ValueError(f"image must not be empty, got shape {shape}")


def check_finite(bounds, dtype):
    """ValueError unless the (min, max) of float pixels are finite (a NaN
    anywhere makes the minimum NaN)."""
    if dtype.kind == "f" and not np.isfinite(bounds).all():
        raise ValueError("image must not contain NaN or inf values")


def stand_in(shape, dtype):
    """A read-only array of this shape and dtype holding no pixels (one value,
    broadcast), for the checks and decisions that need only the layout of an
    image that is not in memory (a dask array, a file read in strips)."""
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)


def normalised_channel_axis(channel_axis, ndim):
    """`channel_axis` checked against an array of `ndim` axes, as a negative index
    (so that -1 and 2 of a 3-D array compare equal), or None."""
    if channel_axis is None:
        if ndim not in (2, 3, 4):
            raise ValueError(f"image must be 2-D (Y, X), 3-D (Z, Y, X) or 4-D (W, Z, Y, X) "
                             f"without channel_axis, got {ndim}-D; pass channel_axis for "
                             f"colour images")
        return None
    if (isinstance(channel_axis, (bool, np.bool_))
            or not isinstance(channel_axis, numbers.Integral)):
        raise ValueError(f"channel_axis must be an int or None, got {channel_axis!r}")
    if ndim not in (3, 4, 5):
        raise ValueError(f"image with channel_axis must be 3-D (Y, X, C), 4-D (Z, Y, X, C) "
                         f"or 5-D (W, Z, Y, X, C), got {ndim}-D")
    if not -ndim <= channel_axis < ndim:
        raise ValueError(f"channel_axis must be in [{-ndim}, {ndim - 1}] for a {ndim}-D image, "
                         f"got {channel_axis}")
    return int(channel_axis) - ndim if channel_axis >= 0 else int(channel_axis)


def normalised_time_axis(time_axis, ndim, channel_axis):
    """`time_axis` checked against an array of `ndim` axes whose channels are at
    `channel_axis`, as a non-negative index, or None. Frames are 2-D images or
    3-D volumes: the array is (T, Y, X), (T, Z, Y, X) or either with C, the axes
    in any order."""
    if time_axis is None:
        return None
    if (isinstance(time_axis, (bool, np.bool_))
            or not isinstance(time_axis, numbers.Integral)):
        raise ValueError(f"time_axis must be an int or None, got {time_axis!r}")
    expected = (3, 4) if channel_axis is None else (4, 5)
    if ndim not in expected:
        shapes = "(T, Y, X) or (T, Z, Y, X)" if channel_axis is None else \
            "(T, Y, X, C) or (T, Z, Y, X, C)"
        raise ValueError(f"frames with time_axis must be {expected[0]}-D or {expected[1]}-D "
                         f"{shapes}, got {ndim}-D")
    if not -ndim <= time_axis < ndim:
        raise ValueError(f"time_axis must be in [{-ndim}, {ndim - 1}] for a {ndim}-D array, "
                         f"got {time_axis}")
    time_axis = int(time_axis) % ndim
    if channel_axis is not None and time_axis == int(channel_axis) % ndim:
        raise ValueError(f"time_axis and channel_axis must differ, both are {time_axis}")
    return time_axis


def frames_first(image, time_axis, channel_axis):
    """(view of `image` with its time axis first, the channel axis in that view):
    frames become a volume whose first axis is time. No time axis: unchanged."""
    time_axis = normalised_time_axis(time_axis, image.ndim, channel_axis)
    if time_axis is None:
        return image, channel_axis
    return np.moveaxis(image, time_axis, 0), _channel_after_moving(channel_axis, time_axis,
                                                                  image.ndim)


def _channel_after_moving(channel_axis, time_axis, ndim):
    """Where the channel axis is once the (non-negative) time axis is moved first."""
    if channel_axis is None:
        return None
    channel = int(channel_axis) % ndim
    return channel + 1 if channel < time_axis else channel


def as_channel_first_volume(image, channel_axis, time_axis=None):
    """View `image` as (C, Z, Y, X), Z the time axis of frames; returns (volume,
    number of axes the passes run over)."""
    image, channel_axis = frames_first(image, time_axis, channel_axis)
    channel_axis = normalised_channel_axis(channel_axis, image.ndim)
    if channel_axis is None:
        volume = image[None, None] if image.ndim == 2 else image[None]
        return volume, image.ndim
    moved = np.moveaxis(image, channel_axis, 0)
    volume = moved[:, None] if image.ndim == 3 else moved
    return volume, image.ndim - 1


def from_channel_first_volume(volume, channel_axis, n_spatial, time_axis=None):
    """Undo :func:`as_channel_first_volume` (a view where possible)."""
    if time_axis is not None:
        ndim = n_spatial + (channel_axis is not None)
        moved_channel = _channel_after_moving(channel_axis, time_axis, ndim)
        return np.moveaxis(from_channel_first_volume(volume, moved_channel, n_spatial), 0,
                           time_axis)
    if channel_axis is None:
        return volume[0, 0] if n_spatial == 2 else volume[0]
    volume = volume[:, 0] if n_spatial == 2 else volume
    return np.moveaxis(volume, 0, channel_axis)
