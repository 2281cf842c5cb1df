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
    """

    kind: str
    sigma: float
    scale: int
    correlation: float
    scale_sigmas: tuple
    channel_sigmas: tuple
    levels: tuple
    level_intensities: tuple

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        for key in ("scale_sigmas", "channel_sigmas"):
            data[key] = tuple(data[key])
        for key in ("levels", "level_intensities"):
            data[key] = tuple(tuple(v) for v in data[key])
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
        "auto" decides between white and correlated noise; "gaussian" takes the
        noise as white (the fine-scale level, whatever the correlation figure).
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
    return NoiseModel(
        kind="correlated" if correlated else "white",
        sigma=min(scale_sigmas[2], 2.0 * second) if correlated else fine, scale=scale,
        correlation=float(correlation), scale_sigmas=scale_sigmas,
        channel_sigmas=tuple(c[2 if correlated else 0] for c in per_channel),
        levels=tuple(levels for levels, _ in thirds),
        level_intensities=tuple(intensities for _, intensities in thirds))


def _channel_planes(image, channel_axis):
    """The image's channels, each a 2-D image or 3-D volume, as float64."""
    image = np.asarray(image, dtype=np.float64)
    if channel_axis is None:
        return [image]
    image = np.moveaxis(image, channel_axis, -1)
    return [image[..., c] for c in range(image.shape[-1])]


def _levels(channel, scale):
    """((dark, mid, bright) noise levels, their median intensities) of one
    channel at `scale`: the high-pass of the block means, split into thirds by
    the local brightness (the 3x3 mean of the same block means)."""
    planes = channel if channel.ndim == 3 else channel[None]
    responses, brightness = [], []
    for plane in planes:
        means = block_means(plane, scale) if scale > 1 else plane
        if min(means.shape) < 3:
            continue
        responses.append(np.abs(high_pass(means)).ravel())
        local = sum(means[i:means.shape[0] - 2 + i, j:means.shape[1] - 2 + j]
                    for i in range(3) for j in range(3)) / 9.0
        brightness.append(local.ravel())
    if not responses:
        return (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
    responses, brightness = np.concatenate(responses), np.concatenate(brightness)
    low, high = quantiles(brightness, (1 / 3, 2 / 3))
    thirds = [brightness <= low, (brightness > low) & (brightness <= high), brightness > high]
    levels = tuple(median(responses[t]) * _MAD_TO_SIGMA / 6.0 * scale if t.any()
                   else 0.0 for t in thirds)
    intensities = tuple(median(brightness[t]) if t.any() else 0.0 for t in thirds)
    return levels, intensities
