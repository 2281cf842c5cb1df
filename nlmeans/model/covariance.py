"""The noise's covariance over a patch, from a sample of the noise alone.

Camera noise is correlated over neighbouring pixels (demosaicing, JPEG), so
its covariance over a k x k patch is not sigma^2 I: most of its power sits at
a patch's low frequencies. NL-Bayes with that covariance C_N in place of
sigma^2 I (:mod:`nlmeans.methods.nlbayes`) shrinks each direction of a patch
by the noise it holds there.

Stationary noise has one autocovariance R(dy, dx) (per pair of channels), and
every patch covariance is made of its values: the entry for the pixels p and q
of a patch is R(q - p). The autocovariance is taken from a sample of the noise
alone: a dark frame, a blank region of the same acquisition, or the difference
of two shots of a static scene divided by sqrt 2 (each shot's noise is
independent, so the difference has twice its covariance). Each channel's mean
is removed first (a dark frame's offset). Colour samples are transformed to
the opponent colours NL-Bayes works in (orthonormal, chroma weight 1).

Measured on the real photo pairs of the development set (every 8th, the noise
taken as the noisy shot less the reference, opponent colours): NL-Bayes 38.02
dB with sigma^2 I, 38.36 with this covariance; 38.32 without the cross-channel
terms. A blind estimate from the noisy image alone did not reach sigma^2 I
(see the results page): JPEG leaves flat regions with 2 to 50 times less noise
than the image's average, so the flat blocks that blind estimators rely on
misread it.
"""

import numpy as np

from nlmeans.model.colour import OpponentColours

# Lags kept per axis: a patch covariance of patches up to 2 * MAX_LAG + 1 wide.
MAX_LAG = 6
# The fewest pixels per axis a sample needs (lags of 6 with a few hundred
# products each at the least).
MIN_SAMPLE = 32


def noise_autocovariance(sample, colour):
    """R[a, b, dy + L, dx + L]: the mean of n_a(y, x) n_b(y + dy, x + dx) over the
    sample, L = MAX_LAG, for the channels a, b of the (Y, X) or (Y, X, C) noise
    `sample` (each channel's mean removed; `colour`: in opponent colours).
    ValueError for a sample that is too small, not finite, or without noise."""
    return lagged_means(noise_planes(sample, colour))


def noise_planes(sample, colour):
    """The (C, Y, X) channels of the noise `sample`, each less its mean (`colour`:
    in opponent colours); ValueError for a sample that is too small, not finite,
    or without noise."""
    sample = np.asarray(sample, np.float64)
    if sample.ndim == 2:
        sample = sample[..., None]
    if sample.ndim != 3:
        raise ValueError(f"a noise sample is a 2-D image, with channels last for colour; got "
                         f"{sample.ndim - 1 if sample.shape[-1] == 1 else sample.ndim} "
                         f"dimensions")
    if min(sample.shape[:2]) < MIN_SAMPLE:
        raise ValueError(f"a noise sample needs at least {MIN_SAMPLE} x {MIN_SAMPLE} pixels, "
                         f"got {sample.shape[0]} x {sample.shape[1]}")
    if not np.isfinite(sample).all():
        raise ValueError("the noise sample holds NaN or infinite values")
    planes = np.moveaxis(sample, -1, 0)
    if colour:
        planes = OpponentColours(1.0, np.float64).forward(planes)
    planes = planes - planes.mean(axis=(1, 2), keepdims=True)
    if not (planes.var(axis=(1, 2)) > 0).all():
        raise ValueError("the noise sample has no noise (a channel is constant)")
    return planes


def lagged_means(planes):
    """R[a, b, dy + L, dx + L] = mean over the overlap of planes[a](p) planes[b](p + d)
    (the autocovariance of planes from noise_planes),
    through FFTs of the planes padded by L (so no lag wraps round)."""
    rows, cols = planes.shape[1:]
    shape = (rows + MAX_LAG, cols + MAX_LAG)
    spectra = np.fft.rfft2(planes, shape)
    lags = np.arange(-MAX_LAG, MAX_LAG + 1)
    counts = np.outer(rows - np.abs(lags), cols - np.abs(lags))
    out = np.empty((planes.shape[0], planes.shape[0], lags.size, lags.size))
    for a in range(planes.shape[0]):
        for b in range(planes.shape[0]):
            # sum_p x_a(p) x_b(p + d): the inverse transform of conj(X_a) X_b at lag d.
            products = np.fft.irfft2(np.conj(spectra[a]) * spectra[b], shape)
            out[a, b] = products[np.ix_(lags % shape[0], lags % shape[1])] / counts
    return out

def patch_covariance(autocovariance, widths):
    """The noise covariance over patches of `widths` (kz, ky, kx) pixels, channel
    by channel in (z, y, x) order, as the NL-Bayes kernels flatten a patch: entry
    (a, p; b, q) is R_ab(q - p) for p and q in one plane, 0 across planes (kz > 1:
    patches that span frames, whose noise is independent from frame to frame)."""
    autocovariance = np.asarray(autocovariance, np.float64)
    kz, ky, kx = widths
    if max(ky, kx) > MAX_LAG + 1:
        raise ValueError(f"a noise covariance is known for 2-D patches up to "
                         f"{MAX_LAG + 1} wide, not {widths}")
    ys, xs = np.divmod(np.arange(ky * kx), kx)
    dy = ys[None, :] - ys[:, None] + MAX_LAG
    dx = xs[None, :] - xs[:, None] + MAX_LAG
    blocks = autocovariance[:, :, dy, dx]  # (C, C, K, K) over one plane
    blocks = np.kron(np.eye(kz), blocks)  # (C, C, kz K, kz K): planes independent
    channels, size = blocks.shape[0], kz * ky * kx
    covariance = blocks.transpose(0, 2, 1, 3).reshape(channels * size, channels * size)
    return (covariance + covariance.T) / 2  # exactly symmetric
