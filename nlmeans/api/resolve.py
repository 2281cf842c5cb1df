"""Deciding what to run: :func:`resolve` turns an image and options into :class:`Settings`."""

import math
import numbers
import warnings
from dataclasses import dataclass, replace

import numpy as np

from nlmeans.methods.nlbayes import bayes_steps, frame_steps
from nlmeans.methods.passes import run_passes
from nlmeans.model.layout import (as_channel_first_volume, check_image, frames_first,
                                  normalised_channel_axis)
from nlmeans.model.covariance import lagged_means, noise_planes
from nlmeans.model.noise import NOISE_KINDS, estimate_noise_model
from nlmeans.model.parameters import (auto_parameters, data_range, refine_parameters,
                                      temporal_radius)
from nlmeans.model.sample import take_sample
from nlmeans.model.settings import METHODS, Pass, Settings
from nlmeans.model.stabilise import VarianceStabiliser
from nlmeans.model.sure import sure_from_terms, sure_terms
from nlmeans.planning.memory import check_bayes_fits, check_memory

# Frames: the noise and the data range are measured on the first ones, so that a
# streamed run (nlmeans.denoise_frames), which has only those when it decides,
# decides as a run over the whole sequence in memory does. A camera's noise
# level is a property of the camera and its settings, the same over a shot.
FRAMES_MEASURED = 8
# Of those, no more than hold this many pixels a channel (at least one frame):
# the measurements are medians and quantiles, whose relative error on two
# million values is about a thousandth, and a shot's next frames hold the same
# content again. (All eight 720p frames took a sixth of a temporal run's time.)
FRAME_PIXELS_MEASURED = 2 ** 21
# Frames before and after that a fixed h's search window spans by default (5
# frames, the window of OpenCV's fastNlMeansDenoisingMulti's examples).
DEFAULT_TEMPORAL_RADIUS = 2

# SURE tries the automatic h times these factors.
SURE_H_FACTORS = (0.7, 0.85, 1.0, 1.15, 1.3)


def resolve(image, h=None, *, patch_radius=None, search_radius=None, sigma=None,
            channel_axis=None, dtype=None, aggregation=None, centre_weight=None,
            chroma_weight=None, refine=None, noise=None, method=None, time_axis=None,
            temporal_radius=None, follow_motion=None):
    """Decide everything a denoising run of `image` needs, without running it.

    Takes the options of :func:`nlmeans.api.denoise` and returns the
    :class:`~nlmeans.model.settings.Settings` that ``denoise(image, ...)`` would run:
    ``denoise(image, settings=resolve(image, ...))`` gives the same pixels. The
    settings hold no pixels, so they can be shown, stored as JSON
    (``to_dict``), and applied to crops, tiles or chunks of the image, which then
    agree with the whole image's result away from their edges (by more than
    ``settings.halo``).

    With a number for `h`, the settings are that one pass of the plain formula
    (sigma 0, pixel-wise, centre weight 1, unless those options are given). With
    `h` left out (or "auto"), everything not given is automatic:

    - sigma is estimated from the image, with a model that tells white from
      spatially correlated (camera) noise (:func:`nlmeans.estimate_noise_model`);
    - the patch radius, search radius and h follow from sigma, scaled to the
      image's data range (:mod:`nlmeans.model.parameters`);
    - each pixel averages the estimates of every patch that covers it, and a
      patch's own weight is the largest of its other weights;
    - RGB distances are measured in opponent colours with the chroma at half
      weight;
    - grey images and volumes get a second, guided pass;
    - an image without measurable noise gets no pass at all.

    ``method="nlbayes"`` gives the steps of NL-Bayes instead
    (:mod:`nlmeans.methods.nlbayes`), their parameters from sigma (given or
    estimated); h, the radii, aggregation, centre weight, chroma weight and
    refine are NL-means options and must be left out.

    ``h="sure"`` also runs the automatic settings with h times each of
    ``SURE_H_FACTORS`` and keeps the h with the lowest SURE.

    Parameters and errors are those of :func:`nlmeans.api.denoise`.

    Returns
    -------
    Settings
    """
    image, bounds = check_image(image)
    settings, _ = resolve_checked(image, bounds, dict(
        h=h, patch_radius=patch_radius, search_radius=search_radius, sigma=sigma,
        channel_axis=channel_axis, dtype=dtype, aggregation=aggregation,
        centre_weight=centre_weight, chroma_weight=chroma_weight, refine=refine, noise=noise,
        method=method, time_axis=time_axis, temporal_radius=temporal_radius,
        follow_motion=follow_motion))
    return settings


def resolve_checked(image, bounds, options, sample=None, in_memory=True):
    """:func:`resolve` for a checked image and its (min, max); also returns the
    :class:`SureChoice` of ``h="sure"`` (else None), which holds the chosen
    run's result so that it need not be computed again.

    The noise and the data range are measured on `sample`, (array, channel
    axis), by default :func:`nlmeans.model.sample.take_sample` of the image. For an
    image that is not in memory (a dask array, a file read in strips), `image`
    is a stand-in of its shape and dtype, `sample` must be given, the memory
    check is left out (`in_memory` False: the image runs in pieces) and
    ``h="sure"`` is refused (it runs the whole image several times).
    """
    caller_channel_axis = options["channel_axis"]
    image, channel_axis = frames_first(image, options.get("time_axis"), caller_channel_axis)
    frames = options.get("time_axis") is not None
    options = dict(options, channel_axis=channel_axis)
    volume, n_spatial = as_channel_first_volume(image, channel_axis)
    choice = _check_options(options, n_spatial, volume.shape[0], frames)
    choice = _cut_radii(choice, volume.shape[-(n_spatial - frames):])
    if choice["method"] == "nlbayes":
        # Frames run in blocks: the smallest, one frame and its context, must fit.
        shape = volume.shape[:1] + (min(volume.shape[1], 3),) + volume.shape[2:] if frames \
            else volume.shape
        check_bayes_fits(shape, np.dtype(choice["dtype"]), in_memory)
    elif in_memory:
        patch, search = choice["patch_radius"], choice["search_radius"]
        if frames:  # the largest automatic radii where not given
            time = choice["temporal_radius"]
            patch = _window(6 if patch is None else patch, n_spatial, True, 0)
            search = _window(10 if search is None else search, n_spatial, True,
                             3 if time is None else time)
        check_memory(volume.shape, patch, search, n_spatial, np.dtype(choice["dtype"]),
                      choice["refine"])
    elif choice["mode"] == "sure":
        raise ValueError("h='sure' needs the whole image in memory (it denoises it several "
                         "times); use h='auto' or a number for images run in pieces")
    colour = volume.shape[0] > 1 and options["channel_axis"] is not None
    if sample is None and (choice["sigma"] is None or choice["mode"] != "fixed"
                           or choice["method"] == "nlbayes"):
        # Frames: the first ones (a streamed run has only those when it decides).
        measured = image[:measured_frames(volume.shape[2:])] if frames else image
        sample = take_sample(*_as_volume(measured, channel_axis, n_spatial))
    sigma, model, curve = choice["sigma"], None, choice["curve"]
    if curve is not None:
        curve = curve * volume.shape[0]  # the same for every channel
    covariance = None
    if choice["noise"] == "sample":
        model, covariance = _sample_noise(options["noise"], volume.shape[0], colour,
                                          choice["method"] == "nlbayes")
        sigma = model.sigma
    elif sigma is None:
        _check_measurable(volume.shape[-n_spatial:])
        model = estimate_noise_model(*sample, choice["noise"], levels=False)
        sigma = model.sigma
        curve = model.curve or None
    mode = choice["mode"]
    if mode == "sure" and (model is not None and model.kind != "white" or curve is not None):
        mode = "auto"  # SURE holds for white noise only: the automatic h instead
    # The data range scales the automatic rules; a fixed h does not need it (and
    # its percentile costs a few per cent of a small image's time).
    scale = None
    if mode != "fixed" or choice["method"] == "nlbayes":
        scale = data_range(sample[0], model.scale_sigmas[0] if model else sigma,
                           maximum=sample[0].max() if frames else bounds[1])
        if curve is not None:  # the passes run on the stabilised image
            scale = VarianceStabiliser(curve).span(scale)
    if choice["method"] == "nlbayes":
        white = model is None or model.kind != "correlated"
        passes = () if sigma == 0 else \
            frame_steps(sigma, scale, volume.shape[0], white, choice["temporal_radius"],
                        frame_values=volume[:, 0].size) \
            if frames else bayes_steps(sigma, scale, volume.shape[0], n_spatial, white)
    else:
        passes = _passes(choice, sigma, scale, n_spatial, colour=colour, frames=frames)
    settings = Settings(
        passes=passes,
        sigma=float(sigma), data_range=scale,
        sigma_estimated=choice["sigma"] is None and choice["noise"] != "sample",
        dtype=choice["dtype"], chroma_weight=choice["chroma_weight"], n_spatial=n_spatial,
        channels=volume.shape[0], channel_axis=_axis(caller_channel_axis, image.ndim),
        mode=mode, method=choice["method"], noise=model,
        time_axis=_axis(options.get("time_axis"), image.ndim), variance_curve=curve,
        noise_covariance=covariance, follow_motion=choice["follow_motion"])
    if mode == "sure" and settings.passes:
        sure = choose_h_by_sure(volume, settings, bounds)
        if sure is None:  # no h had a possible SURE estimate: the automatic h stays
            return replace(settings, mode="auto"), None
        return settings.with_h(sure.h), sure
    return settings, None


def measured_frames(frame_shape):
    """How many of the first frames, each of `frame_shape` (spatial, without
    channels), the noise and the data range are measured on."""
    return max(1, min(FRAMES_MEASURED, FRAME_PIXELS_MEASURED // math.prod(frame_shape)))


def _sample_noise(noise_sample, channels, colour, covariance):
    """(noise model, autocovariance if `covariance` else None) of a sample of the
    noise alone: a 2-D array, with the image's channels last for more than one;
    ValueError otherwise."""
    noise_sample = np.asarray(noise_sample)
    expected = (2,) if channels == 1 else (3,)
    if noise_sample.ndim not in expected or channels > 1 \
            and noise_sample.shape[-1] != channels:
        raise ValueError(f"the noise sample must be a 2-D array"
                         f"{'' if channels == 1 else f' with the {channels} channels last'}, "
                         f"got shape {noise_sample.shape}")
    if not np.issubdtype(noise_sample.dtype, np.number) or \
            np.issubdtype(noise_sample.dtype, np.complexfloating):
        raise ValueError(f"the noise sample must hold real numbers, got {noise_sample.dtype}")
    planes = noise_planes(noise_sample, colour)  # checked, each channel less its mean
    model = estimate_noise_model(noise_sample, -1 if channels > 1 else None, "auto",
                                 levels=False)
    autocovariance = lagged_means(planes) if covariance else None
    return replace(model, curve=(), growth=1.0), autocovariance


def _cut_radii(choice, spatial):
    """The choice with given radii cut, per axis, to the image's size less one,
    with a warning: a larger radius reaches only mirrored copies of pixels the
    window already holds, at a cost that grows with the window (the command
    line cuts them so too, with a note). Frames: `spatial` is a frame's."""
    for name in ("patch_radius", "search_radius"):
        value = choice[name]
        if value is None:
            continue
        radii = _radii(value, len(spatial))
        cut = tuple(min(r, n - 1) for r, n in zip(radii, spatial))
        if cut != radii:
            warnings.warn(f"{name} {value} reaches beyond the image "
                          f"({'x'.join(map(str, spatial))}): using {'x'.join(map(str, cut))}",
                          stacklevel=4)
            choice = dict(choice, **{name: cut})
    return choice


def _check_measurable(spatial):
    """ValueError for an image too small for the noise estimate: its 3x3 high-pass
    needs 3 pixels or more along each of the last two spatial axes (a line of
    pixels, or a 2-pixel strip, has no noise to read, which is not no noise)."""
    if min(spatial[-2:]) < 3:
        raise ValueError(f"the image ({'x'.join(map(str, spatial))} pixels) is too small to "
                         f"measure its noise (3 or more along each axis are needed): give "
                         f"sigma (--sigma) or h (--h)")


def _passes(choice, sigma, scale, n_spatial, colour, frames=False):
    """The passes: the main one, then the guided second pass if asked for.
    Frames: 2-D patches, and a search window that also spans the temporal
    radius's frames before and after."""
    automatic = choice["mode"] != "fixed"
    if automatic and sigma == 0:
        return ()  # nothing to remove: the image comes back as it is
    patch, search, h = choice["patch_radius"], choice["search_radius"], choice["h"]
    volume = n_spatial - frames >= 3  # 3-D (or 4-D) patches
    if automatic:
        auto_patch, auto_search, h = auto_parameters(sigma, scale, colour=colour, volume=volume,
                                                     frames=frames)
        patch = auto_patch if patch is None else patch
        search = auto_search if search is None else search
    time = choice["temporal_radius"]
    if frames and time is None:
        time = temporal_radius(sigma, scale, volume=volume) if automatic \
            else DEFAULT_TEMPORAL_RADIUS
    main = Pass(_window(2 if patch is None else patch, n_spatial, frames, 0),
                _window(7 if search is None else search, n_spatial, frames, time), float(h),
                float(sigma), choice["aggregation"], choice["centre_weight"])
    if not choice["refine"] or sigma == 0:  # an estimate of 0: nothing for a second pass to do
        return (main,)
    # The second pass's weights compare patches of the first result, which are
    # nearly noise-free, so nothing is subtracted from their distances.
    patch, search, h = refine_parameters(sigma, volume=volume)
    if frames and choice["temporal_radius"] is None:
        time = temporal_radius(sigma, scale, refine=True, volume=volume) if automatic else time
    second = Pass(_window(patch, n_spatial, frames, 0), _window(search, n_spatial, frames, time),
                  float(h), 0.0, choice["aggregation"], choice["centre_weight"], guided=True)
    return (main, second)


def _as_volume(image, channel_axis, n_spatial):
    """(array, channel axis) to measure: four spatial axes become a 3-D volume of
    the 2-D planes (the noise is measured plane by plane)."""
    if n_spatial < 4:
        return image, channel_axis
    if channel_axis is not None:
        image = np.moveaxis(image, channel_axis, -1)
        return image.reshape((-1,) + image.shape[-3:]), -1
    return image.reshape((-1,) + image.shape[-2:]), None


def _window(radius, n_spatial, frames, time):
    """Per-axis radii; frames: `radius` is the frames' own, `time` goes first."""
    if frames:
        return (time,) + _radii(radius, n_spatial - 1)
    return _radii(radius, n_spatial)


def _check_options(options, n_spatial, channels, frames=False):
    """The options checked, with the defaults of their mode filled in; ValueError
    naming the first bad one. Frames: the radii are the frames' (2-D), and
    `temporal_radius` is theirs along time."""
    method = _check_method(options)
    h = options["h"]
    mode = "fixed"
    if h is None or (isinstance(h, str) and h in ("auto", "sure")):
        mode = "auto" if h is None else h
    else:
        h = _check_positive_finite(h, "h")
    automatic = mode != "fixed"
    sigma, noise, curve = _check_noise(options["sigma"], options["noise"])
    if isinstance(sigma, str) and sigma == "auto" or sigma is None and automatic:
        sigma = None  # estimated
    else:
        sigma = _check_positive_finite(0.0 if sigma is None else sigma, "sigma", allow_zero=True)
    dtype = np.dtype(np.float32 if options["dtype"] is None else options["dtype"])
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {options['dtype']!r}")
    aggregation = options["aggregation"] or ("patch" if automatic else "pixel")
    centre_weight = options["centre_weight"] or ("max" if automatic else "one")
    if aggregation not in ("pixel", "patch"):
        raise ValueError(f"aggregation must be 'pixel' or 'patch', got {aggregation!r}")
    if centre_weight not in ("one", "max"):
        raise ValueError(f"centre_weight must be 'one' or 'max', got {centre_weight!r}")
    nlmeans_auto = automatic and method == "nlmeans"
    chroma_weight = _check_chroma_weight(options["chroma_weight"], channels, nlmeans_auto)
    refine = options["refine"]
    if refine is None:
        refine = nlmeans_auto and channels == 1
    elif not isinstance(refine, (bool, np.bool_)):
        raise ValueError(f"refine must be True or False, got {refine!r}")
    if refine and sigma == 0:
        raise ValueError("refine needs sigma > 0 (the second pass's h is a multiple of sigma)")
    for name in ("patch_radius", "search_radius"):
        if options[name] is not None:
            _check_radius(options[name], name, n_spatial - 1 if frames else n_spatial)
    if n_spatial == 4 and method == "nlbayes":
        raise ValueError("method='nlbayes' runs on 2-D images, 3-D volumes and frames of 2-D "
                         "images, not 4-D ones (or frames of volumes)")
    time = options.get("temporal_radius")
    if time is not None:
        if not frames:
            raise ValueError("temporal_radius needs frames: pass time_axis too")
        time = _check_radius(time, "temporal_radius", 1)[0]
    follow_motion = options.get("follow_motion")
    if follow_motion is not None:
        if not frames:
            raise ValueError("follow_motion needs frames: pass time_axis too")
        if not isinstance(follow_motion, (bool, np.bool_)):
            raise ValueError(f"follow_motion must be True or False, got {follow_motion!r}")
    if noise == "sample" and n_spatial - frames != 2:
        raise ValueError("a noise sample is taken for 2-D images and frames, not volumes")
    return dict(method=method, mode=mode, h=h, sigma=sigma, noise=noise, curve=curve,
                dtype=dtype.name,
                aggregation=aggregation, centre_weight=centre_weight,
                chroma_weight=chroma_weight, refine=bool(refine),
                patch_radius=options["patch_radius"], search_radius=options["search_radius"],
                temporal_radius=time, follow_motion=follow_motion is not False)


# NL-means's own options: NL-Bayes takes none of them.
_NLMEANS_OPTIONS = ("h", "patch_radius", "search_radius", "aggregation", "centre_weight",
                    "chroma_weight", "refine")


def _check_method(options):
    """The method, checked; for NL-Bayes, ValueError naming the NL-means options given."""
    method = options.get("method") or "nlmeans"
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "nlbayes":
        given = [name for name in _NLMEANS_OPTIONS if options[name] is not None
                 and not (name == "h" and options[name] == "auto")]
        if given:
            raise ValueError(f"method='nlbayes' takes its parameters from sigma: leave out "
                             f"{', '.join(given)} (NL-means options)")
    return method


def _check_noise(sigma, noise):
    """(sigma, noise kind, variance curve): a number for `noise` is the noise
    level, like `sigma`; a pair (a, b) is the variance a * x + b of
    signal-dependent noise, whose stabilised level is 1; an array is a sample of
    the noise alone (kind "sample": its model and covariance are measured on
    it)."""
    if noise is None or isinstance(noise, str) and noise in NOISE_KINDS:
        return sigma, noise or "auto", None
    if isinstance(noise, np.ndarray):
        if sigma is not None:
            raise ValueError("give the noise once: sigma, or a noise sample, not both")
        return None, "sample", None
    if isinstance(noise, str):
        raise ValueError(f"noise must be one of {NOISE_KINDS}, a number or a pair (a, b), got "
                         f"{noise!r}")
    if sigma is not None:
        raise ValueError("give the noise once: sigma, or a number or pair for noise, not both")
    if isinstance(noise, (tuple, list)):
        if len(noise) != 2:
            raise ValueError(f"noise as a variance curve is a pair (a, b) of a * x + b, got "
                             f"{noise!r}")
        a = _check_positive_finite(noise[0], "noise's a")
        b = noise[1]
        if isinstance(b, (bool, np.bool_)) or not isinstance(b, numbers.Real) \
                or not np.isfinite(b):
            raise ValueError(f"noise's b must be a finite number, got {b!r}")
        return 1.0, "gaussian", ((a, float(b)),)
    return _check_positive_finite(noise, "noise", allow_zero=True), "gaussian", None


def _axis(channel_axis, ndim):
    """The channel axis as a non-negative index (None stays None)."""
    return None if channel_axis is None else int(channel_axis) % ndim


def _radii(value, n_spatial):
    """A radius option (int or one per axis) as a tuple of n_spatial ints."""
    return _check_radius(value, "radius", n_spatial)


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


def _check_chroma_weight(chroma_weight, channels, automatic):
    """The chroma weight to use: given, or 0.5 for automatic RGB, else 1."""
    if chroma_weight is None:
        return 0.5 if automatic and channels == 3 else 1.0
    chroma_weight = _check_positive_finite(chroma_weight, "chroma_weight")
    if channels != 3 and chroma_weight != 1.0:
        raise ValueError(f"chroma_weight needs an RGB image (3 channels along channel_axis), "
                         f"got {channels} channel{'s' if channels > 1 else ''}")
    return chroma_weight


@dataclass
class SureChoice:
    """What choosing h by SURE found: the h kept, every (h, SURE MSE) tried, and
    the kept run's unrounded result and SURE terms."""

    h: float
    candidates: list
    result: np.ndarray
    terms: tuple


def choose_h_by_sure(volume, settings, bounds):
    """Run `settings` with its first pass's h times each of SURE_H_FACTORS and
    keep the h with the lowest SURE estimate of the mean squared error; None
    when no estimate is possible (every one 0 or less: the noise is not the
    white Gaussian noise SURE assumes, and the lowest would mean nothing)."""
    values = volume.astype(settings.work_dtype, copy=False)
    best, candidates = None, []
    for factor in SURE_H_FACTORS:
        trial = settings.with_h(settings.passes[0].h * factor)
        out = run_passes(values, trial, bounds)
        terms = sure_terms(values, out, lambda v, t=trial: run_passes(
            v.astype(settings.work_dtype), t, bounds), settings.sigma)
        mse = sure_from_terms(*terms, settings.sigma)
        candidates.append((trial.passes[0].h, mse))
        if mse > 0 and (best is None or mse < best[1]):  # an impossible one means nothing
            best = (trial.passes[0].h, mse, out, terms)
    if best is None:
        return None
    h, _, result, terms = best
    return SureChoice(h, candidates, result, terms)


# The options that settings= fixes; with it, they must be left out.
SETTINGS_OPTIONS = ("h", "patch_radius", "search_radius", "sigma", "aggregation",
                    "centre_weight", "chroma_weight", "refine", "noise", "method",
                    "temporal_radius", "follow_motion")


def check_settings_fit(settings, image, options, in_memory=True):
    """ValueError unless `settings` can run on `image` with no option contradicting it."""
    if not isinstance(settings, Settings):
        raise ValueError(f"settings must be an nlmeans.Settings, got {type(settings).__name__}")
    given = [name for name in SETTINGS_OPTIONS if options.get(name) is not None]
    if given:
        raise ValueError(f"settings= fixes {', '.join(given)}: leave "
                         f"{'it' if len(given) == 1 else 'them'} out, or resolve again with "
                         f"{'it' if len(given) == 1 else 'them'}")
    if options["dtype"] is not None and np.dtype(options["dtype"]) != settings.work_dtype:
        raise ValueError(f"dtype {np.dtype(options['dtype']).name} contradicts the settings' "
                         f"{settings.dtype}")
    axis = options["channel_axis"]
    expected = None if settings.channel_axis is None else settings.channel_axis - image.ndim
    if axis is not None and normalised_channel_axis(axis, image.ndim) != expected:
        raise ValueError(f"channel_axis {axis} contradicts the settings' "
                         f"{settings.channel_axis}")
    time = options.get("time_axis")
    if time is not None and (settings.time_axis is None
                             or isinstance(time, int) and time % image.ndim != settings.time_axis):
        raise ValueError(f"time_axis {time} contradicts the settings' {settings.time_axis}")
    volume, n_spatial = as_channel_first_volume(image, settings.channel_axis, settings.time_axis)
    if (n_spatial, volume.shape[0]) != (settings.n_spatial, settings.channels):
        raise ValueError(f"the settings are for {settings.n_spatial}-D images with "
                         f"{settings.channels} channel(s), got a {n_spatial}-D image with "
                         f"{volume.shape[0]}")
    if settings.method == "nlbayes":
        check_bayes_fits(volume.shape, settings.work_dtype, in_memory)
    elif settings.passes and in_memory:
        first = settings.passes[0]
        check_memory(volume.shape, first.patch_radius, first.search_radius, n_spatial,
                     settings.work_dtype, len(settings.passes) > 1)
