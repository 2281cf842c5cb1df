"""NL-means with Gaussian-weighted patches (the original formulation of
Buades, Coll & Morel, and scikit-image's slow mode): the distance of two
patches is the mean over the channels of sum_k g(k) (x(p + k) - x(q + k))^2,
g a normalised Gaussian over the patch's offsets k.

The Gaussian is separable, so for one offset t the distances of all the
pixels of a tile are the squared differences x(p) - x(p + t) filtered by g
along each axis in turn: one pass per axis, 2 * radius + 1 taps each, instead
of the uniform patches' running sums. Tiles of output rows run on threads
(:func:`nlmeans.kernels.nlm.run_tiles`); each computes every offset of its
window for its own pixels, so tiles write nothing in common.
"""

import numpy as np
from numba import njit

from nlmeans.kernels.constants import LOG2_E
from nlmeans.kernels.nlm import exp2_neg, run_tiles


def gaussian_taps(radius):
    """scikit-image's slow-mode patch weights along one axis: exp(-k² / (2 A²)),
    A = (width - 1) / 4, for k = -radius..radius, normalised to sum 1 (the
    patch's weights are their product over the axes)."""
    width = 2 * radius + 1
    spread = (width - 1) / 4.0
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-k * k / (2 * spread * spread)) if radius else np.ones(1)
    return taps / taps.sum()


@njit(cache=True, nogil=True, fastmath=True)
def _squared_row(padded, out, pz, py, px, t):
    """out[j] = sum over channels of (x(q) - x(q + t))² for q = (pz, py, px + j)
    in padded coordinates."""
    span = out.shape[0]
    for c in range(padded.shape[0]):
        first = padded[c, pz, py, px:px + span]
        other = padded[c, pz + t[0], py + t[1], px + t[2]:px + t[2] + span]
        if c == 0:
            for j in range(span):
                diff = first[j] - other[j]
                out[j] = diff * diff
        else:
            for j in range(span):
                diff = first[j] - other[j]
                out[j] += diff * diff


@njit(cache=True, nogil=True, fastmath=True)
def _gaussian_tile(padded, num, den, z, y0, rows, search, patch, margin, taps_z, taps_y,
                   taps_x, scale, offset):
    """Accumulate, for the tile's pixels (plane z, rows y0 .. y0 + rows), every
    offset t of the search window: weight 2**-max(distance * scale - offset, 0)
    times the pixel at p + t (scale and offset in units of log2(e)).

    Row by row: the squared differences of the 2 * patch[1] + 1 rows (on each
    of the patch's planes) that an output row's patches cover are kept in a
    ring of rows, each made once per offset, so the filters read from the
    first-level cache. Each weight is made, used and dropped in one row pass.
    (A variant that made each pair once for both of its pixels, half the
    offsets in boxes grown by t as the uniform kernel does, stored the weights
    and read them twice: it measured no faster.)"""
    width = num.shape[3]
    span = width + 2 * patch[2]
    height = 2 * patch[1] + 1
    ring = np.empty((2 * patch[0] + 1, height, span), dtype=padded.dtype)
    filtered = np.empty(span, dtype=padded.dtype)
    weights = np.empty(width, dtype=padded.dtype)
    zero = scale - scale
    px = margin[2] - patch[2]
    for tz in range(-search[0], search[0] + 1):
        for ty in range(-search[1], search[1] + 1):
            for tx in range(-search[2], search[2] + 1):
                t = (tz, ty, tx)
                for r in range(rows + 2 * patch[1]):
                    py = y0 + r - patch[1] + margin[1]
                    for a in range(2 * patch[0] + 1):
                        _squared_row(padded, ring[a, r % height], z + a - patch[0] + margin[0],
                                     py, px, t)
                    i = r - 2 * patch[1]  # the output row whose patches end at row r
                    if i < 0:
                        continue
                    for j in range(span):
                        filtered[j] = zero
                    for a in range(taps_z.shape[0]):
                        for k in range(height):
                            tap = taps_z[a] * taps_y[k]
                            row = ring[a, (i + k) % height]
                            for j in range(span):
                                filtered[j] += tap * row[j]
                    for j in range(width):
                        weights[j] = zero
                    for k in range(taps_x.shape[0]):
                        tap = taps_x[k]
                        for j in range(width):
                            weights[j] += tap * filtered[j + k]
                    for j in range(width):
                        weights[j] = exp2_neg(max(weights[j] * scale - offset, zero))
                    sums = den[z, y0 + i]
                    for j in range(width):
                        sums[j] += weights[j]
                    sy = y0 + i + margin[1] + ty
                    sx = margin[2] + tx
                    for c in range(padded.shape[0]):
                        source = padded[c, z + margin[0] + tz, sy, sx:sx + width]
                        target = num[c, z, y0 + i]
                        for j in range(width):
                            target[j] += weights[j] * source[j]


def gaussian_nlmeans(padded, shape, search, patch, h, sigma, rows=32, threads=1):
    """NL-means with Gaussian patches of the (C, Z, Y, X) image of `shape`,
    given `padded` by search + patch on every side (mirrored). Weights are
    exp(-max(d² - 2 sigma², 0) / h²), d² the Gaussian-weighted mean of the
    squared differences over the patch and the channels; the pixel itself
    takes part with weight 1. Returns the (C, Z, Y, X) result."""
    channels, depth, height, width = shape
    dtype = padded.dtype.type
    margin = tuple(s + p for s, p in zip(search, patch))
    taps = [gaussian_taps(r).astype(padded.dtype) for r in patch]
    num = np.zeros(shape, dtype=padded.dtype)
    den = np.zeros(shape[1:], dtype=padded.dtype)
    # exp(-u) = 2**-(u log2 e)
    scale = dtype(LOG2_E / (channels * h * h))
    offset = dtype(LOG2_E * 2.0 * sigma * sigma / (h * h))
    starts = [(z, y) for z in range(depth) for y in range(0, height, rows)]

    def run(tile):
        z, y0 = starts[tile]
        _gaussian_tile(padded, num, den, z, y0, min(rows, height - y0), search, patch, margin,
                       taps[0], taps[1], taps[2], scale, offset)

    run_tiles(run, len(starts), threads)
    return num / den
