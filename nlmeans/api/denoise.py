"""Public NL-means API: denoise an array, as :func:`resolve` decides and the passes run.

`denoise_with_report` is the whole flow: check the image, resolve the settings
(or take the caller's), run their passes on the channel-first volume, estimate
the error with SURE if asked, and give the result back in the caller's layout
and dtype.
"""

from dataclasses import dataclass, field

import numpy as np

from nlmeans.api.resolve import check_settings_fit, resolve_checked
from nlmeans.backends.ndpass import numpy_pass
from nlmeans.methods.passes import run_passes
from nlmeans.model.layout import (as_channel_first_volume, check_image, normalised_channel_axis,
                                  stand_in)
from nlmeans.model.parameters import data_range
from nlmeans.model.settings import Settings
from nlmeans.model.sure import psnr_from_mse, sure_from_terms, sure_terms
from nlmeans.planning.backend_choice import choose_backend, small_for_numpy
from nlmeans.runners.block import in_callers_layout
from nlmeans.runners.chunked import denoise_dask, is_dask_array, measure
from nlmeans.runners.frames import sequence_bounds


@dataclass
class Report:
    """What :func:`denoise_with_report` did: the settings it ran and how good it
    thinks the result is.

    `settings` is the :class:`~nlmeans.model.settings.Settings` that ran; the fields
    before it repeat its main figures: h, radii, aggregation and centre weight
    of the first pass (h 0 and no radii when there was no pass), sigma, and the
    second pass as refine = (patch_radius, search_radius, h), or None.
    sigma_estimated is True when sigma was estimated from the image. sure_mse is
    Stein's unbiased estimate of the mean squared error against the unknown clean
    image (None when it was not computed or sigma is 0), and psnr_estimate the
    PSNR it implies for `data_range` (None with a numeric h and no error
    estimate, where nothing needs it). SURE is only as good as sigma: when the
    error is much smaller than sigma², a few per cent off in sigma moves it a
    lot, so psnr_range gives the PSNR estimates for sigma 5 % lower and higher
    (worth reading when sigma was estimated; inf where SURE's error at that
    sigma is 0 or less: then the estimate is unreliable). h_candidates lists
    (h, SURE MSE) when h was chosen by SURE. error_note says why there is no
    error estimate where one was asked for but SURE does not apply (correlated
    noise, or an impossible estimate: noise that is not Gaussian of level
    sigma); with ``h="sure"`` and no possible estimate, the automatic h runs.
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
    error_note: str | None = None
    device: str = "cpu"
    method: str = "nlmeans"
    settings: Settings | None = field(default=None, repr=False)

    @classmethod
    def of(cls, settings):
        """The report's fields that the settings give (NL-Bayes steps have no h,
        aggregation or centre weight: h 0, "patch" and "one", the nearest NL-means
        terms for what they do, and no refine)."""
        first = settings.passes[0] if settings.passes else None
        second = settings.passes[1] if len(settings.passes) > 1 else None
        if settings.method == "nlbayes":
            return cls(h=0.0, patch_radius=first.patch_radius if first else (),
                       search_radius=first.search_radius if first else (),
                       sigma=settings.sigma, sigma_estimated=settings.sigma_estimated,
                       aggregation="patch", centre_weight="one",
                       data_range=settings.data_range, settings=settings, method="nlbayes")
        return cls(h=first.h if first else 0.0,
                   patch_radius=first.patch_radius if first else (),
                   search_radius=first.search_radius if first else (),
                   sigma=settings.sigma, sigma_estimated=settings.sigma_estimated,
                   aggregation=first.aggregation if first else "pixel",
                   centre_weight=first.centre_weight if first else "one",
                   data_range=settings.data_range, chroma_weight=settings.chroma_weight,
                   refine=(second.patch_radius, second.search_radius, second.h)
                   if second else None, settings=settings)


def denoise(image, h=None, *, patch_radius=None, search_radius=None, sigma=None,
            channel_axis=None, dtype=None, aggregation=None, centre_weight=None,
            chroma_weight=None, refine=None, noise=None, method=None, time_axis=None,
            temporal_radius=None, follow_motion=None, settings=None, device="cpu"):
    r"""Denoise an image or volume with non-local means (or NL-Bayes).

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
    borders (NumPy's ``reflect`` mode), so every pixel has a full window of full
    patches. A given radius beyond the image is cut, per axis, to its size less
    one, with a warning (a wider window holds only mirrored copies).

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
    noise : {"auto", "gaussian"}, float, (float, float) or ndarray, optional
        The noise model, when sigma is estimated: "auto" (default) tells white
        noise from spatially correlated camera noise (:mod:`nlmeans.model.noise`),
        measures the latter at the scale where it decorrelates, and fits the
        variance a * x + b of white noise that grows with the signal (photon
        noise), which then runs through a variance-stabilising transform
        (:mod:`nlmeans.model.stabilise`); "gaussian" takes the noise as white
        and of one level, as a 3x3 high-pass sees it. A number is the noise
        level, as `sigma`; a pair (a, b) is a known variance a * x + b (in
        the image's units, every channel; e.g. a sensor's gain and read
        noise). An array is a sample of the noise alone, 2-D with the image's
        channels last (a dark frame, a blank region, or two shots of a still
        scene subtracted and divided by sqrt 2), for 2-D images and frames: its
        level replaces the estimate, and NL-Bayes uses its covariance over
        patches in place of sigma^2 I (:mod:`nlmeans.model.covariance`), which
        suits correlated camera noise.
    device : {"cpu", "cuda", "auto"}, optional
        Where the passes run: the CPU (default), an NVIDIA GPU through
        numba-cuda (``pip install 'nlmeans[cuda]'``; 2-D images in float32,
        the same results to float32 rounding), or the GPU when one is usable
        and can run these settings, else the CPU.
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
    method : {"nlmeans", "nlbayes"}, optional
        "nlmeans" (default): the formula above. "nlbayes": Non-Local Bayes
        (Lebrun, Buades and Morel 2013, :mod:`nlmeans.methods.nlbayes`), which
        estimates each group of similar patches from the group's mean and
        covariance, in two steps; better images than NL-means (measured
        +0.5 dB on Set12, closer to BM3D) at a few times its time. Its
        parameters follow from sigma (given or estimated), so `h`, the radii,
        `aggregation`, `centre_weight`, `chroma_weight` and `refine` must be
        left out; it runs on the CPU, on images in memory.
    time_axis : int, optional
        The frames' axis: `image` is a sequence of 2-D frames, (T, Y, X) or,
        with `channel_axis`, (T, Y, X, C), the axes in any order. Patches stay
        2-D (the radii above are the frames'), and each pixel's search window
        also spans `temporal_radius` frames before and after its own, padded
        at the first and last frame with frames of the window (never a
        frame's own copy: :mod:`nlmeans.model.padding`). The frames share one set of settings,
        measured on the first few (at most ``nlmeans.api.resolve.FRAMES_MEASURED``,
        and no more than hold ``FRAME_PIXELS_MEASURED`` pixels), so a
        frame's result is the same as in a streamed run
        (:func:`nlmeans.denoise_frames`); it is clipped to the dtype's range
        (integers) rather than the sequence's.
    temporal_radius : int, optional
        With `time_axis`: frames before and after in the search window.
        Default: 3 in automatic mode (1 in its second pass), 2 with a numeric h;
        NL-Bayes: 4, fewer for large frames (3 at 720p colour, 2 at 1080p grey,
        1 at 1080p colour: see :func:`nlmeans.methods.nlbayes.frame_steps`).
    follow_motion : bool, optional
        With `time_axis` (default True): the frames' motion is estimated (one
        move a frame, :mod:`nlmeans.model.motion`) and the window in each other
        frame also covers, at half its radius, where the pixel's content went,
        so that a pan farther a frame than the window reaches is still found.
        False: the window is around the pixel only.
    settings : Settings, optional
        Run exactly these settings (from :func:`nlmeans.api.resolve`, perhaps of a
        larger image this one is a crop of) instead of deciding them from this
        image: nothing is estimated again. The options above must then be left
        out; `channel_axis` and `dtype` may be given if they agree with it.

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
    resolve : the settings this would run, decided without running them.
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
                                    chroma_weight=chroma_weight, refine=refine, noise=noise,
                                    method=method, time_axis=time_axis,
                                    temporal_radius=temporal_radius,
                                    follow_motion=follow_motion, settings=settings,
                                    device=device, estimate_error=False)
    return result


def denoise_with_report(image, h=None, *, patch_radius=None, search_radius=None, sigma=None,
                        channel_axis=None, dtype=None, aggregation=None,
                        centre_weight=None, chroma_weight=None, refine=None, noise=None,
                        method=None, time_axis=None, temporal_radius=None,
                        follow_motion=None, settings=None, device="cpu", estimate_error=True,
                        small_on_numpy=False):
    """:func:`denoise`, also returning a :class:`Report` of what it did.

    With `small_on_numpy`, on the CPU, images with little work run on the NumPy
    pass (:mod:`nlmeans.backends.ndpass`, the same formula, equal to float rounding)
    instead of the compiled kernel, as the command line runs them: automatic
    mode up to about 64² grey, which takes less time than importing Numba and
    loading the kernel (see :data:`nlmeans.planning.backend_choice.NUMPY_WORK`).
    The choice depends on the settings and the size only, so a call gives the
    same bytes whatever ran before it.

    With `estimate_error` (and sigma > 0) the report holds the SURE estimate of
    the mean squared error and the PSNR it implies; that costs one more run of
    the denoiser. SURE assumes additive white Gaussian noise of standard
    deviation sigma: on clipped or quantised data it is an approximation, and
    where the noise model found correlated noise, or SURE comes out at or below
    zero, there is no estimate and `error_note` says why.
    """
    options = dict(h=h, patch_radius=patch_radius, search_radius=search_radius, sigma=sigma,
                   channel_axis=channel_axis, dtype=dtype, aggregation=aggregation,
                   centre_weight=centre_weight, chroma_weight=chroma_weight, refine=refine,
                   noise=noise, method=method, time_axis=time_axis,
                   temporal_radius=temporal_radius, follow_motion=follow_motion)
    if is_dask_array(image):
        return _denoise_lazy(image, options, settings, device, estimate_error)
    image, bounds = check_image(image)
    sure = None
    if settings is None:
        settings, sure = resolve_checked(image, bounds, options)
    else:
        check_settings_fit(settings, image, options)
    volume, _ = as_channel_first_volume(image, settings.channel_axis, settings.time_axis)
    if settings.time_axis is not None:
        bounds = sequence_bounds(image.dtype)
    report = Report.of(settings)
    backend, report.device = choose_backend(device, settings)
    if small_on_numpy and backend is None and small_for_numpy(settings, volume.shape[1:]):
        backend = numpy_pass
    if isinstance(h, str) and h == "sure" and settings.mode != "sure":
        if _sure_applies(settings, report):  # white, but every SURE estimate impossible
            report.error_note = ("not available: SURE gave an impossible error for every h "
                                 f"tried; {_not_gaussian(report)}")
        report.error_note += "; h follows the automatic rules instead"
    if estimate_error and report.data_range is None:
        report.data_range = data_range(image, settings.sigma)  # for the PSNR estimate
    if not settings.passes:
        return image.copy(), report

    # The kernel clips to the input's range and rounds integer output, except when
    # SURE needs the unrounded values: then the result is rounded at the end.
    integer = image.dtype.kind != "f"
    values = volume.astype(settings.work_dtype, copy=False)
    terms = None
    if sure is not None:
        result, terms, report.h_candidates = sure.result, sure.terms, sure.candidates
    elif (estimate_error and settings.sigma > 0 and report.error_note is None
          and _sure_applies(settings, report)):
        result = run_passes(values, settings, bounds, backend=backend)
        terms = _sure_terms(values, result, settings, bounds, backend)
    else:
        result = run_passes(values, settings, bounds, rounded=integer, backend=backend)
    if terms is not None:
        _report_error(report, terms)
        if integer:
            result = np.rint(result)

    return in_callers_layout(result, settings, image.dtype, bounds), report


def _denoise_lazy(array, options, settings, device, estimate_error):
    """(lazy result, report) for a dask array (:mod:`nlmeans.runners.chunked`)."""
    if options["time_axis"] is not None or settings is not None and settings.time_axis is not None:
        raise ValueError("frames as a dask array are not supported: pass a NumPy array, or "
                         "stream them with nlmeans.denoise_frames")
    if estimate_error:
        raise ValueError("the SURE error estimate needs the whole image in memory: pass "
                         "estimate_error=False (or call denoise) for a dask array")
    layout = stand_in(array.shape, array.dtype)
    axis = options["channel_axis"] if settings is None else settings.channel_axis
    if array.ndim - (axis is not None) == 4:
        raise ValueError("dask arrays of four spatial axes are not supported: pass a NumPy "
                         "array")
    if settings is None:
        if options["channel_axis"] is not None:  # checked before anything is computed
            normalised_channel_axis(options["channel_axis"], array.ndim)
        bounds, sample = measure(array, options["channel_axis"])
        settings, _ = resolve_checked(layout, bounds, options, sample=sample, in_memory=False)
    else:
        check_settings_fit(settings, layout, options, in_memory=False)
        bounds, _ = measure(array, settings.channel_axis, sample=False)
    report = Report.of(settings)
    backend, report.device = choose_backend(device, settings)
    if not settings.passes:
        return array.copy(), report
    return denoise_dask(array, settings, bounds, backend), report


def _sure_applies(settings, report):
    """Whether SURE's white Gaussian model holds; if not, say why in the report."""
    if settings.variance_curve is not None:
        report.error_note = ("not available: the noise is signal-dependent and SURE needs "
                             "white noise of one level")
        return False
    if settings.noise is None or settings.noise.kind == "white":
        return True
    report.error_note = (f"not available: the noise is {settings.noise.kind} (correlation "
                         f"figure {settings.noise.correlation:.2f}) and SURE needs white noise")
    return False


def _sure_terms(values, result, settings, bounds, backend=None):
    """SURE's measured terms for `result` = run_passes(values, settings)."""
    return sure_terms(values, result, lambda v: run_passes(v.astype(settings.work_dtype),
                                                           settings, bounds, backend=backend),
                      settings.sigma)


def _not_gaussian(report):
    """Why SURE failed, in terms that agree with the noise model's verdict."""
    noise = report.settings.noise if report.settings is not None else None
    if noise is not None and noise.kind == "white":
        return (f"the noise is white (correlation figure {noise.correlation:.2f}) but not "
                f"Gaussian of level {report.sigma:.3g}: clipped, quantised or growing with "
                f"the signal")
    return "the noise is not white Gaussian of the level sigma gives"


def _report_error(report, terms):
    """Fill the report's SURE figures from the measured terms."""
    sigma, scale = report.sigma, report.data_range  # automatic modes always have a range
    report.sure_mse = sure_from_terms(*terms, sigma)
    if not report.sure_mse > 0:
        # Only possible when the noise is not the white Gaussian noise SURE assumes.
        report.error_note = (f"not available: SURE gave an impossible error "
                             f"({report.sure_mse:.3g}); {_not_gaussian(report)}")
        report.sure_mse = None
        return
    report.psnr_estimate = psnr_from_mse(report.sure_mse, scale)
    # A sigma 5 % off whose SURE error is 0 or less has no PSNR: inf, which the
    # report then calls unreliable rather than a figure.
    errors = [sure_from_terms(*terms, sigma * f) for f in (0.95, 1.05)]
    estimates = [psnr_from_mse(e, scale) if e > 0 else float("inf") for e in errors]
    report.psnr_range = (min(estimates), max(estimates))
