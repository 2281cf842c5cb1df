"""Stein's unbiased risk estimate (SURE) of a denoiser's mean squared error.

For y = x + n with Gaussian noise of known σ and a denoiser u = D(y),

    SURE = ‖y − u‖² / N − σ² + (2σ² / N) · div D(y),   div D = Σ_i ∂u_i/∂y_i,

is an unbiased estimate of ‖u − x‖² / N, computed without the clean image x.
The divergence is estimated by Monte Carlo (Ramani, Blu and Unser 2008):
div D(y) ≈ bᵀ (D(y + εb) − D(y)) / ε for a random ±1 vector b, which costs one
more run of the denoiser and works for every NL-means variant here (pixel- or
patch-wise, grey, colour, 3-D).
"""

import numpy as np


def sure_mse(noisy, denoised, denoiser, sigma, seed=0):
    """SURE estimate of the mean squared error of `denoised` = denoiser(noisy)."""
    residual, divergence = sure_terms(noisy, denoised, denoiser, sigma, seed)
    return sure_from_terms(residual, divergence, sigma)


def sure_from_terms(residual, divergence, sigma):
    """SURE from the mean squared residual ‖y − u‖²/N and the mean divergence div/N."""
    return residual - sigma ** 2 + 2.0 * sigma ** 2 * divergence


def sure_terms(noisy, denoised, denoiser, sigma, seed=0):
    """(‖y − u‖²/N, div D(y)/N): the two measured parts of SURE.

    SURE depends steeply on sigma when the error is much smaller than sigma², so
    callers with an estimated sigma can recompute it for nearby sigmas from these.

    Parameters
    ----------
    noisy : ndarray
        The noisy image y, float.
    denoised : ndarray
        denoiser(noisy), float, same shape.
    denoiser : callable
        Maps an image of y's shape to its denoised version (the same parameters
        as were used for `denoised`).
    sigma : float
        Standard deviation of the noise, > 0.
    seed : int
        Seed of the random probe b.

    Returns
    -------
    (float, float)
    """
    noisy = np.asarray(noisy, dtype=np.float64)
    denoised = np.asarray(denoised, dtype=np.float64)
    n = noisy.size
    probe = np.random.default_rng(seed).choice(np.array([-1.0, 1.0]), size=noisy.shape)
    # Small enough for the first-order expansion, large enough that float32
    # rounding in the denoiser stays far below the change it measures.
    epsilon = 0.02 * sigma
    perturbed = np.asarray(denoiser(noisy + epsilon * probe), dtype=np.float64)
    divergence = float(np.sum(probe * (perturbed - denoised))) / epsilon / n
    residual = float(np.sum((noisy - denoised) ** 2)) / n
    return residual, divergence


def psnr_from_mse(mse, data_range):
    """PSNR in dB for a mean squared error and a data range."""
    return float(10.0 * np.log10(data_range ** 2 / max(mse, 1e-300)))
