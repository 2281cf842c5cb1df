"""A blind noise model: white or spatially correlated noise, its level per channel
and per brightness.

Textbook noise is white: every pixel's noise is independent of its neighbours'.
Then Immerkaer's 3x3 high-pass sees it fully, and its level is the same whether
it is measured on the image or on the image averaged over k x k blocks (times k,
since averaging k² independent values divides their spread by k).

Camera noise is not white. Demosaicing interpolates each colour from its
neighbours and JPEG quantises away the fine frequencies of every 8 x 8 block,
so neighbouring noise values are strongly correlated (about 0.7 on real photos)
and most of the noise's power lies at frequencies a 3x3 high-pass barely
passes: on such photos it reads a fifth to a tenth of the noise. Measured on
block averages, the same estimator reads more as the blocks grow, because
correlated values do not average out like independent ones. That growth is the
model's correlation figure: the level at scale 2 over the level at scale 1,
about 1 for white noise (up to 1.9 on textured images at sigma >= 5, where
texture leaks into the coarser scale), 2.3 to 8 on real camera photos.

The model is "correlated" when the figure is 2 or more, and its level is then
the one measured on 4 x 4 block averages: the scale at which camera noise has
decorrelated (its correlation falls to about 0.3 at a distance of 3 to 4
pixels), which is also the scale of the patches that NL-means compares (3 x 3
to 7 x 7). It is the level of white noise that would give the 4 x 4 block means
the same high-pass response; it exceeds the pixel standard deviation of
correlated noise (on the development photos by 1.0 to 1.6 times; on the noise
alone, real minus reference, the automatic rules did best with about 1.45
times the pixel deviation). Texture leaks into the coarse scale far more than
into the finer ones (the level at scale 2 read the same, within 10 %, on the
noisy photos and on their noise alone; at scale 4 it read up to 2.5 times the
noise's), so the level is capped at twice the one at scale 2. That guard
costs little on noise: measured on the noise alone, the level grew 1.4 to 4
times (median 2.1) from scale 2 to scale 4. Below the figure 2 the noise is
taken as white and the level is the fine-scale one, exactly as without the
model. Nearly clean images (sigma of 1
to 2) with much fine texture can read above 2: ``noise="gaussian"`` forces the
white model.

Per channel, the model also gives the level in the dark, middle and bright
thirds of the image (by local brightness), at the scale the model uses: camera
noise grows with the signal, then its tone curve and clipping reshape it.

White noise may still grow with the signal: photon-limited data (microscopy,
astronomy, raw-like sensor data, scans) have Poisson-Gaussian noise of variance
a * x + b. The model fits that line per channel, blind: the image is split into
16 bands of local brightness (equal counts), each band's level is the robust
high-pass level of its pixels (texture barely moves the median, as for the
whole image), and a, b are the least-squares line through the bands' variances,
weighted by their precision (count / variance^2, reweighted with the fit),
with b >= 0 (a negative b would be a negative variance where no photon
arrives; the line is then fitted through the origin). Bands nearer the values'
ends than twice their level are left out: clipping lowers their level (a
floor of zero counts does too, and cannot be told from clipping); a channel
left with fewer than 4 bands is not fitted and takes the mean line of the
others (one sensor, one gain). The noise is "signal-dependent" when the fitted
level at the bright end of the image (the 90th percentile of its values) is
1.3 times the level at the dark end (the 10th) or more, averaged over the
channels: then one sigma would be more than 14 % off the level at one end or
the other, beyond the flat part of the error-against-h curve (SURE's factors
span +-15 %). On white Gaussian noise of level 5 to 50 (Set12 and the colour
test crops, in float and clipped to 8 bits) that ratio read 0.49 to 1.29; on
Poisson-Gaussian noise (a, b from (1, 1) to (16, 0)) 1.3 or more on 58 of 60
images (one read 1.25; one, mostly black, had no band to fit). At level 2,
nearly clean, one Set12 image read 1.64: its texture grows with the brightness.
The denoiser then runs on the generalised Anscombe transform of the image
(:mod:`nlmeans.model.stabilise`), whose noise is white of unit level. (Scaling
the line so that the transformed image's measured level is exactly 1 did worse:
on dim photon-counting data the high-pass reads low where most counts are 0.)
Correlated noise is not tested for it (camera photos: their tone curve bends
the line, and the level falls with brightness as often as it grows).
"""

from dataclasses import asdict, dataclass

import numpy as np

from nlmeans.model.parameters import block_means, estimate_noise, high_pass
from nlmeans.model.quantiles import median, quantiles

# The correlation figure (level at scale 2 / level at scale 1) from which noise
# is taken as correlated; see the module docstring.
CORRELATED_FROM = 2.0
# The block size whose averages give the level of correlated noise.
CORRELATED_SCALE = 4
_MAD_TO_SIGMA = 1.0 / 0.6744897501960817
# The fit of variance = a * x + b: bands of local brightness, and the fewest
# high-pass values a band needs.
CURVE_BANDS = 16
CURVE_BAND_MIN = 50
# Bands nearer the values' ends than this many of their levels are left out
# (clipping lowers their level).
CLIP_MARGIN = 2.0
# Bright-end level over dark-end level from which noise is signal-dependent.
SIGNAL_DEPENDENT_FROM = 1.3
# The growth reported where the noise all but vanishes at the dark end (photon
# counts with no read noise: b = 0 and a dark end of zeros).
GROWTH_CAP = 100.0


@dataclass(frozen=True)
class NoiseModel:
    """The noise found in an image.

    Attributes
    ----------
    kind : {"white", "correlated"}
    sigma : float
        The level the denoiser uses, in the image's intensity units: the
        fine-scale level for white noise; for correlated noise the level at
        scale 4, at most twice the level at scale 2.
    scale : int
        Block size (1, or CORRELATED_SCALE) at which sigma was measured.
    correlation : float
        Level at scale 2 over the level at scale 1: about 1 for white noise,
        larger the more neighbouring noise values are correlated.
    scale_sigmas : tuple of float
        Levels at scales 1, 2 and 4 (mean over channels).
    channel_sigmas : tuple of float
        Per channel, at `scale` (uncapped).
    levels : tuple of tuple of float
        Per channel, (dark, mid, bright) levels at `scale`; the thirds split
        the image by local brightness (ties may make them uneven).
    level_intensities : tuple of tuple of float
        Per channel, the median intensity of the dark, mid and bright thirds.
    curve : tuple of tuple of float
        Signal-dependent noise: per channel, (a, b) of its variance a * x + b,
        in the image's units; empty for the other kinds.
    growth : float
        White noise: the fitted level at the image's bright end over its level
        at the dark end, mean over the channels (1: no growth with the signal;
        1.3 or more: signal-dependent); 1 where it was not measured.
    """

    kind: str
    sigma: float
    scale: int
    correlation: float
    scale_sigmas: tuple
    channel_sigmas: tuple
    levels: tuple
    level_intensities: tuple
    curve: tuple = ()
    growth: float = 1.0

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        for key in ("scale_sigmas", "channel_sigmas"):
            data[key] = tuple(data[key])
        for key in ("levels", "level_intensities", "curve"):
            data[key] = tuple(tuple(v) for v in data.get(key, ()))
        return cls(**data)


NOISE_KINDS = ("auto", "gaussian")


def estimate_noise_model(image, channel_axis=None, noise="auto", levels=True):
    """Estimate the noise model of an image (see the module docstring).

    Parameters
    ----------
    image : array_like
        2-D image, 3-D volume, or either with channels along `channel_axis`.
    channel_axis : int or None
    noise : {"auto", "gaussian"}
        "auto" decides between white, correlated and signal-dependent noise;
        "gaussian" takes the noise as white and of one level (the fine-scale
        level, whatever the correlation figure or its growth with the signal).
    levels : bool
        Also measure the dark, mid and bright levels (descriptive only: the
        denoiser does not need them; without, `levels` and
        `level_intensities` are empty).

    Returns
    -------
    NoiseModel
    """
    if noise not in NOISE_KINDS:
        raise ValueError(f"noise must be one of {NOISE_KINDS} or a number, got {noise!r}")
    planes = _channel_planes(image, channel_axis)
    # Per channel, the level at scales 1, 2 and 4; averaged over the channels as
    # estimate_noise does, so that the white level is exactly its estimate.
    per_channel = [[estimate_noise(plane, scale=k) for k in (1, 2, 4)] for plane in planes]
    scale_sigmas = tuple(float(np.mean([c[i] for c in per_channel])) for i in range(3))
    fine, second = scale_sigmas[0], scale_sigmas[1]
    correlation = second / fine if fine > 0 else (np.inf if second > 0 else 1.0)
    # An image too small for 4 x 4 block means to be measured is taken as white.
    correlated = noise == "auto" and correlation >= CORRELATED_FROM and scale_sigmas[2] > 0
    scale = CORRELATED_SCALE if correlated else 1
    thirds = [_levels(plane, scale) for plane in planes] if levels else []
    kind, sigma = ("correlated", min(scale_sigmas[2], 2.0 * second)) if correlated \
        else ("white", fine)
    curve, growth = (), 1.0
    if noise == "auto" and not correlated and fine > 0:
        fits = [variance_curve(plane) for plane in planes]
        fitted = [fit for fit in fits if fit is not None]
        growth = float(np.mean([g for _, _, g in fitted])) if fitted else 1.0
        if growth >= SIGNAL_DEPENDENT_FROM:
            curve = _shared_gain(fits)
            kind, sigma = "signal-dependent", 1.0
    return NoiseModel(
        kind=kind, sigma=float(sigma), scale=scale,
        correlation=float(correlation), scale_sigmas=scale_sigmas,
        channel_sigmas=tuple(c[2 if correlated else 0] for c in per_channel),
        levels=tuple(levels for levels, _ in thirds),
        level_intensities=tuple(intensities for _, intensities in thirds),
        curve=curve, growth=growth)


def variance_curve(channel):
    """(a, b, growth) of one channel (2-D, or a 3-D volume fitted over its
    planes): the line a * x + b through the noise variances of its bands of
    local brightness, and the fitted level at its 90th percentile over the level
    at its 10th, at most GROWTH_CAP (see the module docstring). None when the
    channel is too small, or too near its values' ends, for the bands."""
    responses, brightness = _responses(channel, 1)
    if responses.size < CURVE_BANDS * CURVE_BAND_MIN:
        return None
    bands = _bands(responses, brightness)
    # Clipped noise (an 8-bit file of noisy data) reads low within a few levels
    # of the values' ends: such bands would fake a growth.
    low, high = float(channel.min()), float(channel.max())
    # (So are those of a floor of photon counts, zeros, which clipping cannot be
    # told from.) Too few bands left: no fit.
    bands = [(mean, level, count) for mean, level, count in bands
             if low < mean - CLIP_MARGIN * level and mean + CLIP_MARGIN * level < high]
    if len(bands) < CURVE_BANDS // 4:
        return None
    means, levels, counts = (np.array(column, dtype=np.float64) for column in zip(*bands))
    variances = levels * levels
    a, b = _weighted_line(means, variances, counts)
    dark, bright = quantiles(channel, (0.1, 0.9))
    tiny = 1e-12 * variances.max()
    growth = np.sqrt(max(a * bright + b, tiny) / max(a * dark + b, tiny))
    return a, b, float(min(growth, GROWTH_CAP))


def _bands(responses, brightness):
    """(median brightness, noise level, count) of each band of local brightness
    (CURVE_BANDS of equal counts) that has CURVE_BAND_MIN values or more."""
    edges = quantiles(brightness, np.linspace(0, 1, CURVE_BANDS + 1)[1:-1])
    band = np.searchsorted(np.asarray(edges), brightness, side="left").astype(np.uint8)
    # The values grouped by band in one pass: a stable sort of small integers is
    # a radix sort (a boolean mask per band took twice as long).
    order = np.argsort(band, kind="stable")
    brightness, responses = brightness[order], responses[order]
    stops = np.cumsum(np.bincount(band, minlength=CURVE_BANDS))
    bands = []
    for start, stop in zip((0, *stops[:-1]), stops):
        if stop - start >= CURVE_BAND_MIN:
            bands.append((median(brightness[start:stop]),
                          median(responses[start:stop]) * _MAD_TO_SIGMA / 6.0,
                          int(stop - start)))
    return bands


def _weighted_line(x, variances, counts):
    """(a, b) of variances ~ a * x + b, b >= 0: least squares weighted by each
    variance's precision, count / variance^2, with the variance the fitted one
    (five reweightings). A negative b would be a negative variance at the
    dark end (zero photons): the line is then fitted through the origin."""
    floor = 1e-12 * variances.max()
    fitted = variances
    design = np.stack([x, np.ones_like(x)], axis=1)
    for _ in range(5):
        weights = np.sqrt(counts) / np.maximum(fitted, floor)
        (a, b), *_ = np.linalg.lstsq(design * weights[:, None], variances * weights, rcond=None)
        if b < 0:
            a, b = float(np.sum(weights ** 2 * x * variances) / np.sum(weights ** 2 * x * x)), 0.0
        fitted = np.maximum(a * x + b, floor)
    return float(a), float(b)


def _shared_gain(fits):
    """Per channel, the (a, b) to stabilise with. The channels of one sensor
    share its gain: a channel too dark or bright to be fitted takes the mean
    line of the others, and a channel's a is at least a tenth of the largest
    (an a near 0 would make the transform a huge offset, which float32 cannot
    hold to the noise's precision)."""
    fitted = [(a, b) for a, b, _ in (fit for fit in fits if fit is not None)]
    mean = tuple(float(np.mean(column)) for column in zip(*fitted))
    top = max(a for a, _ in fitted)
    curves = [mean if fit is None else fit[:2] for fit in fits]
    return tuple((max(a, 0.1 * top), b) for a, b in curves)


def _channel_planes(image, channel_axis):
    """The image's channels, each a 2-D image or 3-D volume, as contiguous
    float64 (the measurements shift and reshape whole planes: on a strided
    channel each step would gather)."""
    image = np.asarray(image)
    if channel_axis is None:
        return [np.ascontiguousarray(image, dtype=np.float64)]
    image = np.moveaxis(image, channel_axis, -1)
    return [np.ascontiguousarray(image[..., c], dtype=np.float64)
            for c in range(image.shape[-1])]


def _responses(channel, scale):
    """(|high-pass|, local brightness) of one channel's block means at `scale`,
    every plane's pooled: the brightness is the 3x3 mean of the same block
    means, at the high-pass's positions."""
    planes = channel if channel.ndim == 3 else channel[None]
    responses, brightness = [np.empty(0)], [np.empty(0)]
    for plane in planes:
        means = block_means(plane, scale) if scale > 1 else plane
        if min(means.shape) < 3:
            continue
        responses.append(np.abs(high_pass(means)).ravel())
        down = means[:-2] + means[1:-1] + means[2:]
        brightness.append(((down[:, :-2] + down[:, 1:-1] + down[:, 2:]) / 9.0).ravel())
    return np.concatenate(responses), np.concatenate(brightness)


def _levels(channel, scale):
    """((dark, mid, bright) noise levels, their median intensities) of one
    channel at `scale`: the high-pass of the block means, split into thirds by
    the local brightness."""
    responses, brightness = _responses(channel, scale)
    if not responses.size:
        return (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
    low, high = quantiles(brightness, (1 / 3, 2 / 3))
    thirds = [brightness <= low, (brightness > low) & (brightness <= high), brightness > high]
    levels = tuple(median(responses[t]) * _MAD_TO_SIGMA / 6.0 * scale if t.any()
                   else 0.0 for t in thirds)
    intensities = tuple(median(brightness[t]) if t.any() else 0.0 for t in thirds)
    return levels, intensities
