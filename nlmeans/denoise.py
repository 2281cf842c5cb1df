"""Public NL-means API: validation, dtype handling, channel axis, dispatch to the kernel."""

import numbers
from dataclasses import dataclass, field

import numpy as np

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


def _tile_shape(n_spatial, channels, pixel_wise, spatial_shape, threads):
    """The output tile for an image of `spatial_shape` with `channels` channels,
    on `threads` threads; `pixel_wise`: the kernel's fused path (pixel-wise
    aggregation, centre weight 1).

    A tile holds one accumulator per channel plus the weight sum; with more
    channels the 2-D tile has fewer rows, so that its buffers stay near the size
    that measured best (RGB: 64 rows on both paths). Images with fewer than two
    tiles per thread get tiles of fewer rows (down to 32), so that every thread
    has work and the last tiles even out.
    """
    if n_spatial == 3:
        return _TILE_3D
    _, rows, width = _TILE_2D_PIXEL if pixel_wise else _TILE_2D_PATCH
    # Budget in rows of one accumulator: grey's tile for the pixel-wise path,
    # RGB's for the patch-wise one.
    budget = 2 * rows if pixel_wise else 4 * rows
    rows = max(16, min(rows, budget // (channels + 1)))
    height, image_width = spatial_shape[-2:]
    while rows > 32 and -(-height // rows) * -(-image_width // width) < 2 * threads:
        rows //= 2
    return (1, rows, width)


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


def _kernel_radii(patch_radius, search_radius, n_spatial):
    """Checked (z, y, x) patch and search radii for the kernel; 2-D images get 0
    along z."""
    patch = _check_radius(patch_radius, "patch_radius", n_spatial)
    search = _check_radius(search_radius, "search_radius", n_spatial)
    if n_spatial == 2:
        return (0,) + patch, (0,) + search
    return patch, search


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


@dataclass
class Report:
    """What :func:`denoise_with_report` did: the parameters it used and how good
    it thinks the result is.

    sigma_estimated is True when sigma was estimated from the image. sure_mse is
    Stein's unbiased estimate of the mean squared error against the unknown clean
    image (None when it was not computed or sigma is 0), and psnr_estimate the
    PSNR it implies for `data_range` (None with a numeric h and no error
    estimate, where nothing needs it). SURE is only as good as sigma: when the
    error is much smaller than sigma², a few per cent off in sigma moves it a
    lot, so psnr_range gives the PSNR estimates for sigma 5 % lower and higher
    (worth reading when sigma was estimated). h_candidates lists (h, SURE MSE)
    when h was chosen by SURE. refine is (patch_radius, search_radius, h) of the
    second pass, or None when there was none.
    """

    h: float
    patch_radius: tuple
    search_radius: tuple
    sigma: float
    sigma_estimated: bool
    aggregation: str
    centre_weight: str
    data_range: float | None
    chroma_weight: float = 1.0
    refine: tuple | None = None
    sure_mse: float | None = None
    psnr_estimate: float | None = None
    psnr_range: tuple | None = None
    h_candidates: list = field(default_factory=list)


# SURE tries the automatic h times these factors.
SURE_H_FACTORS = (0.7, 0.85, 1.0, 1.15, 1.3)


def denoise(image, h=None, *, patch_radius=None, search_radius=None, sigma=None,
            channel_axis=None, dtype=np.float32, aggregation=None, centre_weight=None,
            chroma_weight=None, refine=None):
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

    With a number for `h`, this is exactly the formula above (sigma 0,
    pixel-wise, centre weight 1, unless those options are given). With `h`
    left out (or "auto"), everything not given is automatic: sigma is estimated
    from the image, the radii and h follow from sigma, each pixel averages the
    estimates of every patch that covers it, and a patch's own weight is the
    largest of its other weights. ``h="sure"`` also tries several h around the
    automatic one and keeps the one with the lowest SURE (Stein's unbiased
    estimate of the mean squared error).

    Automatic mode also measures the distances of RGB images in opponent
    colours, brightness (R + G + B)/√3 and chroma (R − B)/√2, (R − 2G + B)/√6,
    with the chroma differences scaled by `chroma_weight` (0.5): in photographs
    the chroma channels carry little of the structure but their full share of
    the noise, so down-weighting them makes the weights less noisy (measured
    +0.3 to +0.5 dB over RGB distances, each at its best h). The pixels
    averaged are unchanged: the transform is undone exactly after the weighted
    means. Single-channel images and volumes get a second pass (`refine`).

    Parameters
    ----------
    image : array_like
        2-D image (Y, X), 3-D volume (Z, Y, X), or either with a channel axis
        given by `channel_axis`. Integer or floating point; no NaN or inf.
    h : float or {"auto", "sure"}, optional
        Decay of the weights, > 0, in the image's own intensity units (0-255 for
        8-bit, 0-65535 for 16-bit, native for float). Small values keep edges and
        noise, large values smooth. Default: automatic.
    patch_radius : int or sequence of int, optional
        Patch radius ``ds`` (per spatial axis if a sequence). Default 2 (5x5
        patches) with a numeric h, else automatic.
    search_radius : int or sequence of int, optional
        Search radius ``Ds`` (per spatial axis if a sequence). Default 7 (15x15
        window) with a numeric h, else automatic.
    sigma : float or "auto", optional
        Noise standard deviation, >= 0, in intensity units; ``2 sigma^2`` is
        subtracted from the patch distances. Default 0 with a numeric h, else
        estimated from the image.
    channel_axis : int or None, optional
        Axis of the channels (colour). None means a single-channel image, in
        which case a 3-D array is a volume.
    dtype : {numpy.float32, numpy.float64}, optional
        Precision of the computation. Default float32.
    aggregation : {"pixel", "patch"}, optional
        "pixel": each pixel is the weighted mean of its candidates, as in the
        formula above. "patch": each reference patch is estimated as the
        weighted mean of its candidates' patches, and each pixel averages the
        estimates of all patches that cover it. Default "pixel" with a numeric
        h, else "patch".
    centre_weight : {"one", "max"}, optional
        Weight of the pixel (or patch) itself: 1, or the largest of its other
        weights, which keeps a pixel with no similar neighbour from dominating
        its own estimate. Default "one" with a numeric h, else "max".
    chroma_weight : float, optional
        For RGB images (3 channels): the scale, > 0, of the two chroma axes of
        the opponent colour transform in the patch distances; 1 is the same as
        plain RGB distances. With a value other than 1, `d^2` is the mean over
        the three transformed channels and `2 sigma^2` becomes
        ``2 sigma^2 (1 + 2 chroma_weight^2) / 3``, the transformed noise.
        Default 0.5 in automatic mode, else 1.
    refine : bool, optional
        Run NL-means a second time, with weights that compare patches of the
        first result (far less noisy than the image) and average the noisy
        pixels again: patch radius 1, search radius 10 (3 in volumes), h = 0.3
        sigma (0.35 in volumes), nothing subtracted from the distances, the same
        aggregation and centre weight. Needs sigma > 0. Default True in
        automatic mode for single-channel images and volumes (measured +0.1 to
        +0.6 dB on photographs), else False.

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

    See Also
    --------
    denoise_with_report : the same, also returning the parameters used and the
        SURE estimate of the result's error.

    Examples
    --------
    >>> import numpy as np, nlmeans
    >>> rng = np.random.default_rng(0)
    >>> noisy = np.clip(128 + 20 * rng.standard_normal((64, 64)), 0, 255).astype(np.uint8)
    >>> nlmeans.denoise(noisy, 10).std() < noisy.std()
    True
    >>> nlmeans.denoise(noisy).std() < 5   # automatic parameters
    True
    """
    result, _ = denoise_with_report(image, h, patch_radius=patch_radius,
                                    search_radius=search_radius, sigma=sigma,
                                    channel_axis=channel_axis, dtype=dtype,
                                    aggregation=aggregation, centre_weight=centre_weight,
                                    chroma_weight=chroma_weight, refine=refine,
                                    estimate_error=False)
    return result


def denoise_with_report(image, h=None, *, patch_radius=None, search_radius=None, sigma=None,
                        channel_axis=None, dtype=np.float32, aggregation=None,
                        centre_weight=None, chroma_weight=None, refine=None,
                        estimate_error=True):
    """:func:`denoise`, also returning a :class:`Report` of what it did.

    With `estimate_error` (and sigma > 0) the report holds the SURE estimate of
    the mean squared error and the PSNR it implies; that costs one more run of
    the denoiser. SURE assumes additive Gaussian noise of standard deviation
    sigma: on clipped or quantised data it is an approximation.
    """
    from nlmeans.parameters import auto_parameters, data_range, estimate_noise, refine_parameters

    image = np.asarray(image)
    if image.dtype.kind not in "uif":
        raise ValueError(f"image must have an integer or floating-point dtype, got {image.dtype}")
    if image.size == 0:
        raise ValueError(f"image must not be empty, got shape {image.shape}")
    work_dtype = np.dtype(dtype)
    if work_dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    mode = "fixed"
    if h is None or (isinstance(h, str) and h in ("auto", "sure")):
        mode = "auto" if h is None else h
    else:
        h = _check_positive_finite(h, "h")
    sigma_estimated = sigma is None and mode != "fixed" or (isinstance(sigma, str)
                                                            and sigma == "auto")
    if not sigma_estimated:
        sigma = _check_positive_finite(0.0 if sigma is None else sigma, "sigma", allow_zero=True)
    automatic = mode != "fixed"
    aggregation = aggregation or ("patch" if automatic else "pixel")
    centre_weight = centre_weight or ("max" if automatic else "one")
    if aggregation not in ("pixel", "patch"):
        raise ValueError(f"aggregation must be 'pixel' or 'patch', got {aggregation!r}")
    if centre_weight not in ("one", "max"):
        raise ValueError(f"centre_weight must be 'one' or 'max', got {centre_weight!r}")

    volume, n_spatial = _as_channel_first_volume(image, channel_axis)
    chroma_weight = _check_chroma_weight(chroma_weight, volume.shape[0], automatic)
    if refine is None:
        refine = automatic and volume.shape[0] == 1
    elif not isinstance(refine, (bool, np.bool_)):
        raise ValueError(f"refine must be True or False, got {refine!r}")
    if refine and not sigma_estimated and sigma == 0:
        raise ValueError("refine needs sigma > 0 (the second pass's h is a multiple of sigma)")
    for name, value in (("patch_radius", patch_radius), ("search_radius", search_radius)):
        if value is not None:
            _check_radius(value, name, n_spatial)
    # The input's range: the result is clipped to it. NaN propagates into the
    # minimum and inf is an extreme, so the two reductions also check the values.
    bounds = (image.min(), image.max())
    if image.dtype.kind == "f" and not np.isfinite(bounds).all():
        raise ValueError("image must not contain NaN or inf values")

    _check_memory(volume.shape, patch_radius, search_radius, n_spatial, work_dtype, refine)
    if sigma_estimated:
        sigma = estimate_noise(image, channel_axis)
    # The data range scales the automatic rules and the PSNR estimate; a fixed
    # h without a report needs neither (and its percentile costs a few per cent
    # of a small image's time).
    scale = data_range(image, sigma) if automatic or estimate_error else None
    if automatic:
        auto_patch, auto_search, auto_h = auto_parameters(
            sigma, scale, colour=channel_axis is not None and volume.shape[0] > 1,
            volume=n_spatial == 3)
        patch_radius = auto_patch if patch_radius is None else patch_radius
        search_radius = auto_search if search_radius is None else search_radius
    else:
        patch_radius = 2 if patch_radius is None else patch_radius
        search_radius = 7 if search_radius is None else search_radius
    patch, search = _kernel_radii(patch_radius, search_radius, n_spatial)

    report = Report(h=float(h) if mode == "fixed" else auto_h, patch_radius=patch[-n_spatial:],
                    search_radius=search[-n_spatial:], sigma=float(sigma),
                    sigma_estimated=sigma_estimated, aggregation=aggregation,
                    centre_weight=centre_weight, data_range=scale, chroma_weight=chroma_weight)
    if refine and sigma == 0:
        refine = False  # an estimate of 0: no noise, nothing for a second pass to do
    if refine:
        refine_patch, refine_search, refine_h = refine_parameters(sigma, volume=n_spatial == 3)
        refine_patch, refine_search = _kernel_radii(refine_patch, refine_search, n_spatial)
        report.refine = (refine_patch[-n_spatial:], refine_search[-n_spatial:], refine_h)
    if automatic and sigma == 0:
        # Nothing to remove: an image without measurable noise comes back as it is.
        report.h = 0.0
        return image.copy(), report

    # The kernel clips to the input's range and rounds integer output, except when
    # SURE needs the unrounded values: then the result is rounded at the end.
    integer = image.dtype.kind != "f"
    needs_sure = mode == "sure" or (estimate_error and sigma > 0)

    def run(values, decay, rounded=False):
        if not refine:
            return one_pass(values, None, decay, sigma, patch, search, rounded)
        # The second pass: weights from the first result's patches, which are
        # nearly noise-free, so nothing is subtracted from their distances.
        first = one_pass(values, None, decay, sigma, patch, search, False)
        return one_pass(values, first, refine_h, 0.0, refine_patch, refine_search, rounded)

    def one_pass(values, guide, decay, distance_sigma, patch, search, rounded):
        if chroma_weight == 1.0:
            return _run_kernel(values, decay, distance_sigma, patch, search, aggregation,
                               centre_weight, work_dtype, n_spatial, bounds, rounded, guide)
        # Opponent colours: the weighted means of the transformed pixels are the
        # transformed weighted means of the RGB pixels (the transform is linear
        # and every channel gets the same weights), so the result is undone
        # exactly; it lies within the RGB input's range, clipped for rounding.
        forward, backward = _opponent_transforms(chroma_weight, work_dtype)
        transformed_sigma = distance_sigma * np.sqrt((1.0 + 2.0 * chroma_weight ** 2) / 3.0)
        if guide is not None:
            guide = np.tensordot(forward, guide, axes=1)
        out = _run_kernel(np.tensordot(forward, values, axes=1), decay, transformed_sigma,
                          patch, search, aggregation, centre_weight, work_dtype, n_spatial,
                          (-np.inf, np.inf), False, guide)
        out = np.clip(np.tensordot(backward, out, axes=1), *bounds)
        return np.rint(out, out=out) if rounded else out

    values = volume.astype(work_dtype, copy=False)
    terms = None
    if mode == "sure":
        from nlmeans.sure import sure_from_terms, sure_terms

        best = None
        for factor in SURE_H_FACTORS:
            decay = auto_h * factor
            out = run(values, decay)
            candidate = sure_terms(values, out, lambda v, d=decay: run(v.astype(work_dtype), d),
                                   sigma)
            mse = sure_from_terms(*candidate, sigma)
            report.h_candidates.append((decay, mse))
            if best is None or mse < best[1]:
                best = (decay, mse, out, candidate)
        report.h, report.sure_mse, result, terms = best
    else:
        result = run(values, report.h, rounded=integer and not needs_sure)
        if needs_sure:
            from nlmeans.sure import sure_terms

            terms = sure_terms(values, result, lambda v: run(v.astype(work_dtype), report.h),
                               sigma)
    if integer and needs_sure:
        result = np.rint(result)
    if terms is not None:
        from nlmeans.sure import psnr_from_mse, sure_from_terms

        report.sure_mse = sure_from_terms(*terms, sigma)
        report.psnr_estimate = psnr_from_mse(max(report.sure_mse, 0.0), scale)
        estimates = [psnr_from_mse(max(sure_from_terms(*terms, sigma * f), 0.0), scale)
                     for f in (0.95, 1.05)]
        report.psnr_range = (min(estimates), max(estimates))

    # Back to the input's layout.
    if channel_axis is None:
        result = result[0, 0] if n_spatial == 2 else result[0]
    else:
        result = result[:, 0] if n_spatial == 2 else result
        result = np.moveaxis(result, 0, channel_axis)
    result = _to_dtype(result, image.dtype)
    if image.dtype.kind == "f" and image.dtype.itemsize > work_dtype.itemsize:
        # float64 data computed in float32: the kernel's clip to the input's range
        # was in float32, which may round just outside it; clip again in float64.
        result = np.clip(result, *bounds, out=result)
    return result, report


def kernel_is_cached():
    """Whether Numba has a cache of the compiled kernel on disk (else the first call
    compiles it, which takes about 40 seconds)."""
    import glob
    import os

    import nlmeans

    if os.environ.get("NUMBA_CACHE_DIR"):
        folders = [os.environ["NUMBA_CACHE_DIR"]]
    else:  # next to the package, or Numba's per-user fallback when that is read-only
        folders = [os.path.join(os.path.dirname(nlmeans.__file__), "__pycache__"),
                   os.path.join(os.path.expanduser("~"), ".cache", "numba")]
    return any(glob.glob(os.path.join(folder, "**", "_kernels.nlmeans_kernel-*.nbi"),
                         recursive=True) for folder in folders)


def available_memory():
    """Bytes of memory available to a new allocation (MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _check_memory(shape, patch_radius, search_radius, n_spatial, work_dtype, refine=False):
    """Refuse, with the estimate, an image whose working memory would not fit.

    The work needs the mirrored copy, the result and a few image-sized
    temporaries (input conversion, output cast, SURE's second run); the
    per-thread tile buffers are small and bounded. We do not tile whole images
    to disk: an image that does not fit is refused before anything is allocated.
    """
    radii = []
    for value in (patch_radius, search_radius):
        value = value if value is not None else 10
        radii.append(value if isinstance(value, (tuple, list)) else (value,) * n_spatial)
    margin = [2 * (2 * p + s) for p, s in zip(*radii)]  # at most, with patch aggregation
    spatial = shape[-n_spatial:]
    padded = shape[0] * int(np.prod([n + m for n, m in zip(spatial, margin)]))
    # The second pass keeps the first result and a mirrored copy of it.
    needed = ((2 if refine else 1) * padded + (6 if refine else 5) * shape[0]
              * int(np.prod(spatial))) * work_dtype.itemsize
    available = available_memory()
    if available is not None and needed > 0.9 * available:
        raise MemoryError(f"denoising this image needs about {_size(needed)} of memory and "
                          f"only {_size(available)} is available; crop or downscale it, "
                          f"or free memory")


def _size(count):
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"


def _check_chroma_weight(chroma_weight, channels, automatic):
    """The chroma weight to use: given, or 0.5 for automatic RGB, else 1."""
    if chroma_weight is None:
        return 0.5 if automatic and channels == 3 else 1.0
    chroma_weight = _check_positive_finite(chroma_weight, "chroma_weight")
    if channels != 3 and chroma_weight != 1.0:
        raise ValueError(f"chroma_weight needs an RGB image (3 channels along channel_axis), "
                         f"got {channels} channel{'s' if channels > 1 else ''}")
    return chroma_weight


def _opponent_transforms(chroma_weight, work_dtype):
    """(forward, backward) 3x3 matrices between RGB and opponent colours with the
    chroma axes scaled by `chroma_weight`.

    The rows of the orthonormal opponent basis are brightness (1, 1, 1)/√3 and
    chroma (1, 0, −1)/√2 and (1, −2, 1)/√6; backward is its transpose with the
    chroma scaling undone.
    """
    basis = np.array([[1.0, 1.0, 1.0], [1.0, 0.0, -1.0], [1.0, -2.0, 1.0]])
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    scale = np.array([1.0, chroma_weight, chroma_weight])
    forward = basis * scale[:, None]
    backward = basis.T / scale[None, :]
    return forward.astype(work_dtype), backward.astype(work_dtype)


def _run_kernel(volume, h, sigma, patch, search, aggregation, centre_weight, work_dtype,
                n_spatial, bounds, rounded, guide=None):
    """Pad the (C, Z, Y, X) float volume and run the compiled kernel; the result is
    clipped to `bounds` and, if `rounded`, rounded to integers. The weights compare
    patches of `guide` (same shape) if given, else of the volume itself."""
    from numba import get_num_threads  # deferred, like the kernels: importing Numba costs ~0.3 s

    from nlmeans import _kernels

    aggregation_radius = patch if aggregation == "patch" else (0, 0, 0)
    margins = [(0, 0)] + [(s + p + a,) * 2 for s, p, a in zip(search, patch, aggregation_radius)]
    padded = np.ascontiguousarray(np.pad(volume, margins, mode="reflect"), dtype=work_dtype)
    padded_guide = padded if guide is None else np.ascontiguousarray(
        np.pad(guide, margins, mode="reflect"), dtype=work_dtype)
    terms = padded_guide.shape[0] * int(np.prod([2 * p + 1 for p in patch]))
    # The kernel compares patch *sums* of squared differences: fold the mean into
    # the threshold and the scale.
    threshold = work_dtype.type(2.0 * sigma * sigma * terms)
    # The kernel's exponential is base 2: fold log2(e) into the scale. A tiny h
    # (h² underflows) means: only identical patches get weight; cap the scale so
    # that 0 * scale stays 0 and never becomes inf * 0.
    denominator = h * h * terms
    cap = 1e30 if work_dtype == np.float32 else 1e300
    inv_scale = min(_kernels.LOG2_E / denominator, cap) if denominator > 0 else cap
    if threshold > 0:
        # Keep threshold * inv_scale finite: a larger scale changes only weights of
        # patches whose distance equals the threshold to within float rounding.
        inv_scale = min(inv_scale, cap / threshold)
    inv_scale = work_dtype.type(inv_scale)
    tile = _tile_shape(n_spatial, volume.shape[0],
                       aggregation_radius == (0, 0, 0) and centre_weight != "max",
                       volume.shape[1:], get_num_threads())
    low, high = (work_dtype.type(b) for b in bounds)
    result = _kernels.nlmeans_kernel(padded, padded_guide, patch, search, aggregation_radius,
                                     centre_weight == "max", threshold, inv_scale, tile, low,
                                     high, rounded)
    # The kernel writes channel-last; a channel-first view matches `volume`.
    return np.moveaxis(result, -1, 0)


def _to_dtype(result, dtype):
    """Cast the float result (already rounded for integers, and within the input's
    range, so within the dtype's) to the input's dtype."""
    return np.ascontiguousarray(result, dtype=dtype)
