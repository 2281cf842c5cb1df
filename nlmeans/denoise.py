"""Public NL-means API: validation, dtype handling, channel axis, dispatch to the kernel."""

import numbers

import numpy as np

# Output tiles per thread: about 16k pixels, so that a tile's scratch buffers
# stay in the L2 cache, with tiles much larger than usual search radii so the
# pairs recomputed at tile borders cost little.
_TILE_2D = (1, 64, 256)
_TILE_3D = (8, 32, 64)


def _check_radius(value, name, n_spatial):
    """Return a per-axis tuple of non-negative ints, or raise ValueError."""
    values = value if isinstance(value, (tuple, list)) else (value,) * n_spatial
    if len(values) != n_spatial:
        raise ValueError(f"{name} must be an int or a sequence of {n_spatial} ints "
                         f"(one per spatial axis), got {value!r}")
    radii = []
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        radii.append(int(v))
    return tuple(radii)


def _check_positive_finite(value, name, allow_zero=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    bad = not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero)
    if bad:
        rule = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {rule}, got {value!r}")
    return value


def _as_channel_first_volume(image, channel_axis):
    """View `image` as (C, Z, Y, X) plus what is needed to undo it."""
    ndim = image.ndim
    if channel_axis is None:
        if ndim not in (2, 3):
            raise ValueError(f"image must be 2-D (Y, X) or 3-D (Z, Y, X) without channel_axis, "
                             f"got {ndim}-D; pass channel_axis for colour images")
        volume = image[None] if ndim == 3 else image[None, None]
        return volume, ndim
    if isinstance(channel_axis, (bool, np.bool_)) or not isinstance(channel_axis, numbers.Integral):
        raise ValueError(f"channel_axis must be an int or None, got {channel_axis!r}")
    if ndim not in (3, 4):
        raise ValueError(f"image with channel_axis must be 3-D (Y, X, C) or 4-D (Z, Y, X, C), "
                         f"got {ndim}-D")
    if not -ndim <= channel_axis < ndim:
        raise ValueError(f"channel_axis must be in [{-ndim}, {ndim - 1}] for a {ndim}-D image, "
                         f"got {channel_axis}")
    moved = np.moveaxis(image, channel_axis, 0)
    volume = moved[:, None] if ndim == 3 else moved
    return volume, ndim - 1


def denoise(image, h, *, patch_radius=2, search_radius=7, sigma=0.0, channel_axis=None,
            dtype=np.float32):
    r"""Denoise an image or volume with non-local means.

    Each output pixel is a weighted mean of the pixels in the search window
    around it:

    .. math::

        u(x) = \frac{\sum_y w(x, y)\, v(y)}{\sum_y w(x, y)}, \qquad
        w(x, y) = \exp\left(-\frac{\max(d^2(x, y) - 2\sigma^2, 0)}{h^2}\right),

    where :math:`d^2(x, y)` is the mean, over the patch offsets :math:`k` and the
    channels :math:`c`, of :math:`(v_c(x + k) - v_c(y + k))^2`. The window holds
    ``(2 * search_radius + 1)`` pixels per spatial axis, ``x`` itself included
    (weight 1), and patches ``(2 * patch_radius + 1)`` pixels per axis. One weight
    per pair of pixels is applied to all channels. The image is mirrored at its
    borders (NumPy's ``reflect`` mode, repeated if a radius exceeds the image), so
    every pixel has a full window of full patches.

    Parameters
    ----------
    image : array_like
        2-D image (Y, X), 3-D volume (Z, Y, X), or either with a channel axis
        given by `channel_axis`. Integer or floating point; no NaN or inf.
    h : float
        Decay of the weights, > 0, in the image's own intensity units (0-255 for
        8-bit, 0-65535 for 16-bit, native for float). Small values keep edges and
        noise, large values smooth.
    patch_radius : int or sequence of int, optional
        Patch radius ``ds`` (per spatial axis if a sequence). Default 2 (5x5 patches).
    search_radius : int or sequence of int, optional
        Search radius ``Ds`` (per spatial axis if a sequence). Default 7 (15x15 window).
    sigma : float, optional
        Noise standard deviation, >= 0, in intensity units; ``2 sigma^2`` is
        subtracted from the patch distances. Default 0.
    channel_axis : int or None, optional
        Axis of the channels (colour). None means a single-channel image, in
        which case a 3-D array is a volume.
    dtype : {numpy.float32, numpy.float64}, optional
        Precision of the computation. Default float32.

    Returns
    -------
    numpy.ndarray
        The denoised image, of the input's shape. Integer input comes back in
        the same integer dtype (rounded and clipped); floating-point input in the
        same floating-point dtype.

    Raises
    ------
    ValueError
        For an invalid argument; the message names it and the allowed range.

    Examples
    --------
    >>> import numpy as np, nlmeans
    >>> rng = np.random.default_rng(0)
    >>> noisy = np.clip(128 + 20 * rng.standard_normal((64, 64)), 0, 255).astype(np.uint8)
    >>> nlmeans.denoise(noisy, 10).std() < noisy.std()
    True
    """
    from nlmeans import _kernels  # deferred: importing Numba costs ~0.3 s

    image = np.asarray(image)
    if image.dtype.kind not in "uif":
        raise ValueError(f"image must have an integer or floating-point dtype, got {image.dtype}")
    if image.size == 0:
        raise ValueError(f"image must not be empty, got shape {image.shape}")
    work_dtype = np.dtype(dtype)
    if work_dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    h = _check_positive_finite(h, "h")
    sigma = _check_positive_finite(sigma, "sigma", allow_zero=True)

    volume, n_spatial = _as_channel_first_volume(image, channel_axis)
    patch = _check_radius(patch_radius, "patch_radius", n_spatial)
    search = _check_radius(search_radius, "search_radius", n_spatial)
    if n_spatial == 2:
        patch, search = (0,) + patch, (0,) + search
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ValueError("image must not contain NaN or inf values")

    margins = [(0, 0)] + [(s + p, s + p) for s, p in zip(search, patch)]
    padded = np.ascontiguousarray(np.pad(volume.astype(work_dtype, copy=False), margins,
                                         mode="reflect"))
    channels = volume.shape[0]
    terms = channels * int(np.prod([2 * p + 1 for p in patch]))
    # The kernel compares patch *sums* of squared differences: fold the mean into
    # the threshold and the scale.
    threshold = work_dtype.type(2.0 * sigma * sigma * terms)
    inv_scale = work_dtype.type(1.0 / (h * h * terms))
    tile = _TILE_2D if n_spatial == 2 else _TILE_3D
    result = _kernels.nlmeans_pixelwise(padded, patch, search, threshold, inv_scale, tile)

    # Back to the input's layout.
    if channel_axis is None:
        result = result[0, 0] if n_spatial == 2 else result[0]
    else:
        result = result[:, 0] if n_spatial == 2 else result
        result = np.moveaxis(result, 0, channel_axis)
    return _to_dtype(result, image.dtype)


def _to_dtype(result, dtype):
    """Cast the float result to the input's dtype (rounded and clipped for integers)."""
    if dtype.kind == "f":
        return np.ascontiguousarray(result, dtype=dtype)
    info = np.iinfo(dtype)
    return np.clip(np.rint(result), info.min, info.max).astype(dtype)
