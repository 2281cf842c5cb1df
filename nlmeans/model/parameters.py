"""Automatic parameters: the noise level of an image and NL-means settings for it.

The rules below were chosen by measuring PSNR on scikit-image's bundled
photographs (camera, brick, coins, moon, clock, grass and the grey versions of
astronaut, chelsea, coffee and rocket; colour: astronaut, chelsea, coffee,
rocket, immunohistochemistry, cat), *not* on the Set12 benchmark images, and
follow the principles of the IPOL NL-means study (Buades, Coll and Morel 2011):
patches grow and h/σ shrinks as the noise grows, colour needs smaller patches
(its distances average three channels), and distances are measured with the
σ-subtraction max(d² − 2σ², 0). Each pixel averages the estimates of every
patch that covers it, and a patch's own weight is the largest of its other
weights; both measured better than pixel-wise estimates with weight 1.

Colour distances are measured in opponent colours with the chroma axes at half
scale, as colour block-matching denoisers match on brightness (CBM3D matches on
it alone): the chroma of a photograph holds little structure but its full share
of the noise. The colour rules were refitted for this on the colour photographs
above plus five crops that had not been used before (the motorcycle stereo
pair, Grace Hopper, another part of astronaut, the colour wheel). Over RGB
distances, each at its best h: +0.30 to +0.46 dB on the first group, +0.27 to
+0.38 dB on the second, at every noise level.

Single-channel images and volumes get a second pass: NL-means whose weights
compare patches of the first pass's result instead of the noisy image, and
which averages the noisy pixels again. With less noise in the distances, the
weights follow the image's structure instead of the noise (measured on the grey
photographs: +0.3 dB at sigma 10 to +0.6 dB at sigma 50; on slanted stacks of
them as volumes +0.4 to +1.6 dB). On colour it measured worse at sigma 15 to 25
(-0.1 to -0.2 dB with the opponent-colour distances, +0.1 to +0.2 at 50), so
colour gets one pass.
"""

import numpy as np

from nlmeans.model.quantiles import median, quantiles

# (upper sigma bound in 8-bit units, patch radius, search radius, h / sigma)
GREY_RULES = (
    (12.0, 2, 7, 0.60),
    (20.0, 3, 7, 0.55),
    (30.0, 3, 10, 0.50),
    (45.0, 4, 10, 0.42),
    (np.inf, 5, 10, 0.40),
)
# Colour rules assume the automatic chroma weight 0.5 (distances in opponent
# colours with the chroma axes at half scale; see denoise).
COLOUR_RULES = (
    (22.0, 1, 7, 0.55),
    (40.0, 2, 10, 0.40),
    (np.inf, 3, 10, 0.33),
)
# 3-D patches hold many more voxels, so smaller radii suffice (and the cost of a
# 3-D window grows with its cube).
VOLUME_RULES = (
    (20.0, 1, 2, 0.55),
    (np.inf, 1, 3, 0.45),
)

# Frames (a video, a time series): 2-D patches, a search window over the frame
# and its neighbours. With several times more candidates in the window, the
# weights must be more selective: patches one pixel wider than a single
# frame's (their distances are less noisy) and a smaller h keep the weights on
# the best matches, and the spatial window can shrink (15x15 over 7 frames
# holds 1575 candidates, seven times a single frame's). The guided second pass
# compares patches of the first result, far less noisy, over 3 frames.
# Measured on pans made from scikit-image's coffee and chelsea (grey and RGB,
# integer and sub-pixel steps, 8 frames of 192x256, sigma 10, 20, 40; not the
# benchmark's sequences), over frame-by-frame automatic mode: with 5 frames
# and h 0.8 sigma, +0.6 to +1.5 dB; a wider patch +0.1 to +0.4 dB more on all
# but one; 7 frames +0.1 to +0.6 dB more at 1.3x the time; h 0.7 sigma
# instead of 0.8 +0.1 to +0.3 dB at sigma 20, within 0.15 dB either way at 40;
# the second pass over 5 frames instead of 3 -0.1 to -0.2 dB.
FRAMES_SEARCH = 7
FRAMES_PATCH_WIDER = 1
FRAMES_H = 0.7
FRAMES_TEMPORAL = (3, 1)  # (first pass, second pass)

# The second pass (refine): weights from the first pass's result, whose patches
# are far less noisy than the image's, so small patches and a small h suffice;
# no sigma is subtracted. (patch radius, search radius, h / sigma of the image)
REFINE_RULES = {"image": (1, 10, 0.30), "volume": (1, 3, 0.35)}

# The 3x3 high-pass (Immerkaer 1996), [[1, -2, 1], [-2, 4, -2], [1, -2, 1]], is
# pure noise on smooth image areas; its coefficients' squares sum to 36.
_MAD_TO_SIGMA = 1.0 / 0.6744897501960817


def data_range(image, sigma=0.0, maximum=None):
    """Intensity span that the 8-bit rules are scaled to.

    The dtype's maximum for unsigned integers (4095 for 16-bit data that never
    exceeds it: 12-bit cameras). For floats and signed integers, the usual full
    scale the values fit, 1, 255 or 65535 (they may overshoot it by half of it
    plus four times the noise `sigma`: the 0.1 and 99.9 percentiles of
    unclipped noise lie 3.1 sigma beyond the image's black and white), else the
    robust span of the values (0.1 to 99.9 percentile). `image` may be a sample
    of the image (:mod:`nlmeans.model.sample`) and `maximum` then the whole image's.
    """
    image = np.asarray(image)
    if image.dtype.kind == "u":
        top = float(np.iinfo(image.dtype).max)
        maximum = image.max() if maximum is None else maximum
        return 4095.0 if image.dtype.itemsize == 2 and maximum <= 4095 else top
    low, high = quantiles(image, (0.001, 0.999))
    for scale in (1.0, 255.0, 65535.0):
        overshoot = 0.5 * scale + 4.0 * sigma
        if -overshoot <= low and high <= scale + overshoot and high - low > 0.02 * scale:
            return scale
    span = float(high - low)
    return span if span > 0 else 1.0


def estimate_noise(image, channel_axis=None, scale=1):
    """Estimate the standard deviation of additive Gaussian noise in an image.

    The median absolute value of a 3x3 high-pass (Immerkaer's Laplacian
    difference) over the image, divided by 0.6745 and the filter's norm: a robust
    estimate that edges and texture barely move. Colour channels are estimated
    separately and averaged; a volume is estimated slice by slice.

    Parameters
    ----------
    image : array_like
        2-D image, 3-D volume, or either with channels along `channel_axis`.
    channel_axis : int or None
    scale : int
        Estimate on the image averaged over scale x scale blocks, times `scale`:
        white noise reads the same at every scale, spatially correlated noise
        (which a 3x3 high-pass at scale 1 barely sees) reads higher at coarser
        scales (see :mod:`nlmeans.model.noise`).

    Returns
    -------
    float
        sigma in the image's intensity units.
    """
    image = np.asarray(image, dtype=np.float64)
    if channel_axis is not None:
        image = np.moveaxis(image, channel_axis, -1)
        return float(np.mean([estimate_noise(image[..., c], scale=scale)
                              for c in range(image.shape[-1])]))
    if image.ndim == 3:
        # Volume: the same 2-D estimate on every slice, pooled.
        return median([estimate_noise(plane, scale=scale) for plane in image])
    if image.ndim != 2:
        raise ValueError(f"estimate_noise needs a 2-D image or 3-D volume, got {image.ndim}-D")
    if scale > 1:
        return scale * estimate_noise(block_means(image, scale))
    if min(image.shape) < 3:
        return 0.0
    return median(np.abs(high_pass(image))) * _MAD_TO_SIGMA / 6.0


def high_pass(plane):
    """Immerkaer's 3x3 Laplacian difference of a 2-D plane (valid part); on
    white noise of level sigma its output has standard deviation 6 sigma."""
    # The kernel is [1, -2, 1] down times [1, -2, 1] along: two 3-tap passes
    # instead of nine shifted copies (2.5 times faster).
    down = plane[:-2] - 2.0 * plane[1:-1] + plane[2:]
    return down[:, :-2] - 2.0 * down[:, 1:-1] + down[:, 2:]


def block_means(plane, size):
    """The means of the size x size blocks of a 2-D plane (a ragged edge dropped):
    sums of the blocks' strided views, each block's rows first, as a mean over
    the reshaped blocks' axes adds them (which took 3 times as long at 720p)."""
    rows, cols = plane.shape[0] // size, plane.shape[1] // size
    return sum(sum(plane[dy:rows * size:size, dx:cols * size:size] for dx in range(size))
               for dy in range(size)) / (size * size)


def auto_parameters(sigma, scale=255.0, colour=False, volume=False, frames=False):
    """(patch_radius, search_radius, h) for noise `sigma` in an image whose
    intensities span `scale` (the rules are written for 0-255). Frames: the
    frames' own (2-D) radii; the temporal one is :func:`temporal_radius`."""
    sigma8 = sigma * 255.0 / scale
    rules = VOLUME_RULES if volume else COLOUR_RULES if colour else GREY_RULES
    for bound, patch_radius, search_radius, h_factor in rules:
        if sigma8 < bound:
            if frames and not volume:
                return patch_radius + FRAMES_PATCH_WIDER, min(search_radius, FRAMES_SEARCH), \
                    FRAMES_H * h_factor * sigma
            return patch_radius, search_radius, h_factor * sigma
    raise AssertionError("the last rule has an infinite bound")


def temporal_radius(sigma, scale=255.0, refine=False, volume=False):
    """Frames before and after that the automatic search window spans (of the
    second pass with `refine`). The same at every noise level: where the noise
    is low, the weights of poorer matches vanish anyway. Frames that are
    volumes: one frame each side (a 4-D window's cost grows with its fourth
    power; their 3-D patches and windows keep the volume rules)."""
    if volume:
        return 1
    return FRAMES_TEMPORAL[1 if refine else 0]


def refine_parameters(sigma, volume=False):
    """(patch_radius, search_radius, h) of the second pass for noise `sigma`."""
    patch_radius, search_radius, h_factor = REFINE_RULES["volume" if volume else "image"]
    return patch_radius, search_radius, h_factor * sigma
