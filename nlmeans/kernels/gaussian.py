"""NL-means with Gaussian-weighted patches (the original formulation of
Buades, Coll & Morel, and scikit-image's slow mode): the distance of two
patches is the mean over the channels of sum_k g(k) (x(p + k) - x(q + k))^2,
g a normalised Gaussian over the patch's offsets k.

The Gaussian is separable, so for one offset t the distances of all the
pixels of a tile are the squared differences x(p) - x(p + t) filtered by g
along each axis in turn: one pass per axis, 2 * radius + 1 taps each, instead
of the uniform patches' running sums. Tiles of output rows run on threads
(:func:`nlmeans.kernels.nlm.run_tiles`). On 2-D images a pair of pixels
(p, p + t) has one distance for both: half the window's offsets are computed,
each weight given to both pixels (1.4 times faster on 512² grey), and rows a
tile gives to the next tile's pixels wait in its own buffer until every tile
is done. 3-D images compute every offset of each pixel's window.
"""

import numpy as np
from numba import njit

from nlmeans.kernels.constants import LOG2_E
from nlmeans.kernels.nlm import _diff_row, _unowned, exp2_neg, run_tiles

#: Rows of the 2-D kernel's tiles (fixed: the tiles decide the order of its sums).
PAIR_ROWS = 32


def gaussian_taps(radius):
    """scikit-image's slow-mode patch weights along one axis: exp(-k² / (2 A²)),
    A = (width - 1) / 4, for k = -radius..radius, normalised to sum 1 (the
    patch's weights are their product over the axes)."""
    width = 2 * radius + 1
    spread = (width - 1) / 4.0
    k = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-k * k / (2 * spread * spread)) if radius else np.ones(1)
    return taps / taps.sum()


@njit(cache=True, nogil=True, fastmath=True, inline="always")
def _weighted_rows(ring, first, height, taps, out):
    """out = sum over m of taps[m] * ring[row(m)], m = a * height + k running over
    the patch's planes a and rows k, row(m) = a * height + (first + k) % height:
    the patch's rows filtered across, three rows a pass (a pass per row reads
    and writes `out` once per row: 1.3 times slower on 7-row patches)."""
    span = out.shape[0]
    m = 0
    while m < taps.shape[0]:
        take = 3 if taps.shape[0] - m >= 3 else 1
        r0 = ring[m // height * height + (first + m % height) % height]
        u0 = taps[m]
        if take == 3:
            r1 = ring[(m + 1) // height * height + (first + (m + 1) % height) % height]
            r2 = ring[(m + 2) // height * height + (first + (m + 2) % height) % height]
            u1, u2 = taps[m + 1], taps[m + 2]
            if m == 0:
                for j in range(span):
                    out[j] = u0 * r0[j] + u1 * r1[j] + u2 * r2[j]
            else:
                for j in range(span):
                    out[j] += u0 * r0[j] + u1 * r1[j] + u2 * r2[j]
        elif m == 0:
            for j in range(span):
                out[j] = u0 * r0[j]
        else:
            for j in range(span):
                out[j] += u0 * r0[j]
        m += take


@njit(cache=True, nogil=True, fastmath=True, inline="always")
def _filter_along(row, taps, out):
    """out[j] = sum_k taps[k] * row[j + k], three taps a pass."""
    width = out.shape[0]
    k = 0
    while k < taps.shape[0]:
        take = 3 if taps.shape[0] - k >= 3 else 1
        u0 = taps[k]
        if take == 3:
            u1, u2 = taps[k + 1], taps[k + 2]
            if k == 0:
                for j in range(width):
                    out[j] = u0 * row[j] + u1 * row[j + 1] + u2 * row[j + 2]
            else:
                for j in range(width):
                    out[j] += u0 * row[j + k] + u1 * row[j + k + 1] + u2 * row[j + k + 2]
        elif k == 0:
            for j in range(width):
                out[j] = u0 * row[j]
        else:
            for j in range(width):
                out[j] += u0 * row[j + k]
        k += take


@njit(cache=True, nogil=True, fastmath=True)
def _accumulate(distances, scale, offset, padded, pz, py, px, num, den, z, y):
    """den[z, y] += w and num[c, z, y] += w * padded[c, pz, py, px + j], w =
    2**-max(distance * scale - offset, 0), for one output row (grey in one pass:
    the weights are never stored). Rows are taken one by one, each contiguous,
    so that the loops vectorise."""
    zero = scale - scale
    width = distances.shape[0]
    sums = den[z, y]
    if padded.shape[0] == 1:
        source, target = padded[0, pz, py, px:px + width], num[0, z, y]
        for j in range(width):
            w = exp2_neg(max(distances[j] * scale - offset, zero))
            sums[j] += w
            target[j] += w * source[j]
        return
    for j in range(width):
        distances[j] = exp2_neg(max(distances[j] * scale - offset, zero))
        sums[j] += distances[j]
    for c in range(padded.shape[0]):
        source, target = padded[c, pz, py, px:px + width], num[c, z, y]
        for j in range(width):
            target[j] += distances[j] * source[j]


@njit(cache=True, nogil=True, fastmath=True)
def _gaussian_tile(padded, num, den, z, y0, rows, search, patch, margin, taps_zy, taps_x,
                   scale, offset):
    """Accumulate, for the tile's pixels (plane z, rows y0 .. y0 + rows), every
    offset t of the search window: weight 2**-max(distance * scale - offset, 0)
    times the pixel at p + t (scale and offset in units of log2(e)).

    Row by row: the squared differences of the 2 * patch[1] + 1 rows (on each
    of the patch's planes) that an output row's patches cover are kept in a
    ring of rows, each made once per offset, so the filters read from the
    first-level cache. Each weight is made, used and dropped in one row pass.
    Runs 3-D images; 2-D images take :func:`_pairs_tile`, which makes each
    distance once for both of its pixels."""
    width = num.shape[3]
    span = width + 2 * patch[2]
    height = 2 * patch[1] + 1
    ring = np.empty(((2 * patch[0] + 1) * height, span), dtype=padded.dtype)
    filtered = np.empty(span, dtype=padded.dtype)
    distances = np.empty(width, dtype=padded.dtype)
    px = margin[2] - patch[2]
    padded, num, den = _unowned(padded), _unowned(num), _unowned(den)  # as _pairs_tile's
    for tz in range(-search[0], search[0] + 1):
        for ty in range(-search[1], search[1] + 1):
            for tx in range(-search[2], search[2] + 1):
                t = (tz, ty, tx)
                for r in range(rows + 2 * patch[1]):
                    py = y0 + r - patch[1] + margin[1]
                    for a in range(2 * patch[0] + 1):
                        _diff_row(padded, z + a - patch[0] + margin[0], py, px, t,
                                  _unowned(ring)[a * height + r % height])
                    i = r - 2 * patch[1]  # the output row whose patches end at row r
                    if i < 0:
                        continue
                    _weighted_rows(_unowned(ring), i, height, taps_zy, _unowned(filtered))
                    _filter_along(_unowned(filtered), taps_x, _unowned(distances))
                    _accumulate(_unowned(distances), scale, offset, padded, z + margin[0] + tz,
                                y0 + i + margin[1] + ty, margin[2] + tx, num, den, z, y0 + i)


@njit(cache=True, nogil=True, fastmath=True)
def _pairs_tile(padded, num, den, spill_num, spill_den, y0, y1, search, patch, taps_y, taps_x,
                scale, offset):
    """2-D images: the pairs (p, p + t) of half the window's offsets (t > 0 in
    (row, column) order) whose first pixel p is on rows y0 .. y1, each weight
    made once and given to both of its pixels: to p with the pixel at p + t,
    to p + t with the pixel at p. Rows of p + t below y1 go to the tile's
    `spill` rows, added after every tile is done (tiles write nothing in
    common). The first tile's p also runs over the rows above the image, and
    every p over the columns beside it, where p + t is in the image: each
    pair of the mirrored window is then counted once. Half the distances of
    :func:`_gaussian_tile`."""
    width = num.shape[3]
    rows_y, px = 2 * patch[1] + 1, patch[2]
    margin_y, margin_x = search[1] + patch[1], search[2] + patch[2]
    ring = np.empty((rows_y, width + search[2] + 2 * px), dtype=padded.dtype)
    filtered = np.empty(ring.shape[1], dtype=padded.dtype)
    weights = np.empty(width + search[2], dtype=padded.dtype)
    # Views that count no references (see nlm._unowned): the caller's arrays
    # here; the tile's own buffers where they are used, in the loop.
    padded, num, den = _unowned(padded), _unowned(num), _unowned(den)
    spill_num, spill_den = _unowned(spill_num), _unowned(spill_den)
    for ty in range(0, search[1] + 1):
        for tx in range(-search[2], search[2] + 1):
            if ty == 0 and tx <= 0:
                continue
            first = y0 if y0 > 0 else -ty  # the first tile: p above the image too
            c0 = -tx if tx > 0 else 0  # p's columns: p or p + t in the image
            n = width + abs(tx)
            span = n + 2 * px
            t = (0, ty, tx)
            for r in range(first - patch[1], y1 + patch[1]):
                _diff_row(padded, 0, r + margin_y, c0 - px + margin_x, t,
                          _unowned(ring)[(r - first + patch[1]) % rows_y, :span])
                i = r - patch[1]  # the row of p whose patches end at row r
                if i < first:
                    continue
                _weighted_rows(_unowned(ring), i - first, rows_y, taps_y,
                               _unowned(filtered)[:span])
                _filter_along(_unowned(filtered)[:span], taps_x, _unowned(weights)[:n])
                _to_both(_unowned(weights)[:n], scale, offset, padded, num, den, spill_num,
                         spill_den, i, c0, ty, tx, y1, margin_y, margin_x)


@njit(cache=True, nogil=True, fastmath=True, inline="always")
def _to_both(weights, scale, offset, padded, num, den, spill_num, spill_den, i, c0, ty, tx,
             y1, margin_y, margin_x):
    """The pairs of row i: weights from distances (in place), then p = (i, c0 + j)
    gets w times the pixel at p + t and p + t gets w times the pixel at p,
    where each is in the image."""
    zero = scale - scale
    height, width = num.shape[2], num.shape[3]
    for j in range(weights.shape[0]):
        weights[j] = exp2_neg(max(weights[j] * scale - offset, zero))
    # Views, not shifted indices: an index that might be negative is wrapped
    # around, and the wrap keeps the loops from vectorising. (The loops are
    # written out: nlm's _add_row and _accumulate_row here measured 8-10 %
    # slower on 512² grey.)
    if i >= 0:  # p in the image: its columns 0 .. width are j = -c0 ..
        sums, w = den[0, 0, i], weights[-c0:-c0 + width]
        for j in range(width):
            sums[j] += w[j]
        for c in range(num.shape[0]):
            source = padded[c, 0, i + ty + margin_y, margin_x + tx:margin_x + tx + width]
            target = num[c, 0, i]
            for j in range(width):
                target[j] += w[j] * source[j]
    q = i + ty
    if q >= height:
        return
    # p + t in the image: its columns 0 .. width are p's -tx .., so j = -tx - c0 ..
    start = -tx - c0
    into_num, into_den, row = (num, den, q) if q < y1 else (spill_num, spill_den, q - y1)
    sums, w = into_den[0, 0, row], weights[start:start + width]
    for j in range(width):
        sums[j] += w[j]
    for c in range(num.shape[0]):
        source = padded[c, 0, i + margin_y, margin_x - tx:margin_x - tx + width]
        target = into_num[c, 0, row]
        for j in range(width):
            target[j] += w[j] * source[j]


def _pairs(padded, shape, search, patch, taps_y, taps_x, scale, offset, rows, threads):
    """(numerator, denominator) of a 2-D image by :func:`_pairs_tile`: tiles of
    `rows` rows on threads, then each tile's spill rows added in tile order."""
    channels, _, height, width = shape
    num = np.zeros(shape, dtype=padded.dtype)
    den = np.zeros((1, 1, height, width), dtype=padded.dtype)
    starts = list(range(0, height, rows))
    spills = [(np.zeros((channels, 1, search[1], width), dtype=padded.dtype),
               np.zeros((1, 1, search[1], width), dtype=padded.dtype)) for _ in starts]

    def run(tile):
        y0 = starts[tile]
        _pairs_tile(padded, num, den, spills[tile][0], spills[tile][1], y0,
                    min(y0 + rows, height), search, patch, taps_y, taps_x, scale, offset)

    run_tiles(run, len(starts), threads)
    for y0, (spill_num, spill_den) in zip(starts, spills):
        below = min(y0 + rows, height)
        count = min(search[1], height - below)
        num[:, :, below:below + count] += spill_num[:, :, :count]
        den[:, :, below:below + count] += spill_den[:, :, :count]
    # the pixel itself, weight 1
    num += padded[:, :, search[1] + patch[1]:search[1] + patch[1] + height,
                  search[2] + patch[2]:search[2] + patch[2] + width]
    den += 1
    return num, den[:, 0]


def gaussian_nlmeans(padded, shape, search, patch, h, sigma, rows=None, threads=1):
    """NL-means with Gaussian patches of the (C, Z, Y, X) image of `shape`,
    given `padded` by search + patch on every side (mirrored). Weights are
    exp(-max(d² - 2 sigma², 0) / h²), d² the Gaussian-weighted mean of the
    squared differences over the patch and the channels; the pixel itself
    takes part with weight 1. Returns the (C, Z, Y, X) result."""
    channels, depth, height, width = shape
    dtype = padded.dtype.type
    margin = tuple(s + p for s, p in zip(search, patch))
    taps = [gaussian_taps(r) for r in patch]
    taps_zy = np.outer(taps[0], taps[1]).ravel().astype(padded.dtype)  # (plane, row) order
    taps_x = taps[2].astype(padded.dtype)
    # exp(-u) = 2**-(u log2 e)
    scale = dtype(LOG2_E / (channels * h * h))
    offset = dtype(LOG2_E * 2.0 * sigma * sigma / (h * h))
    if depth == 1 and patch[0] == 0 and search[0] == 0:
        # Tiles of a fixed height: where they end decides the order of the sums.
        num, den = _pairs(padded, shape, search, patch, taps_zy, taps_x, scale, offset,
                          rows or PAIR_ROWS, threads)
        return num / den
    if rows is None:  # tall tiles share their halo rows, four tiles a thread at least
        rows = min(64, max(16, -(-height // (4 * threads))))
    num = np.zeros(shape, dtype=padded.dtype)
    den = np.zeros(shape[1:], dtype=padded.dtype)
    starts = [(z, y) for z in range(depth) for y in range(0, height, rows)]

    def run(tile):
        z, y0 = starts[tile]
        _gaussian_tile(padded, num, den, z, y0, min(rows, height - y0), search, patch, margin,
                       taps_zy, taps_x, scale, offset)

    run_tiles(run, len(starts), threads)
    return num / den
