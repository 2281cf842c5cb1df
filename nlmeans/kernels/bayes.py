"""Numba kernels for NL-Bayes (private: arrays in, arrays out, no validation).

Arrays are channel-first with three spatial axes, ``(C, Z, Y, X)``, as in
:mod:`nlmeans.kernels.nlm`; a 2-D image has Z = 1 and patch radius 0 along Z.
A patch is named by its first corner; positions run over ``size - k + 1``
per axis (k the patch width), so every patch lies inside the image and no
mirroring is needed: near a border the search window is shifted inwards
instead of cut, and keeps its size.

One step processes the reference patches of one tile of positions at a time
(:func:`bayes_tile`): for each reference not yet estimated, it finds the group
of its most similar patches in the search window, estimates every patch of the
group (:func:`bayes_estimate`), adds the estimates to the numerator and their
count to the weight, and marks the group's patches, and their neighbours along
the axes the patches span, as estimated (the "paste trick"): they are not taken
as references again. The marks are kept per tile, so a tile's result depends
only on the tile (not on the order in which tiles run); tiles of one colour of
a checkerboard touch disjoint pixels and run in parallel, the colours one after
the other, so the sums are made in the same order whatever the number of
threads.

Precision: the image, the basic estimate and the result have the caller's dtype
(float32 or float64); distances, groups, covariances and their Cholesky
factors are float64 (a covariance of 25 to 147 dimensions from a few dozen
patches is too ill-conditioned for float32), and so are the accumulators.
"""

import numpy as np
from numba import njit

# Multiply-adds may be fused, but nothing is reordered (no "reassoc"): the sums
# keep the order written, whatever vector width the compiler picks.
_FUSED = {"contract"}


@njit(cache=True)
def ref_positions(count, stride):
    """Reference positions along an axis of `count` positions: every
    `stride`-th, and the last, so that the references cover the axis."""
    n = (count - 1) // stride + 1
    extra = 0 if (count - 1) % stride == 0 else 1
    out = np.empty(n + extra, np.int64)
    for i in range(n):
        out[i] = i * stride
    if extra:
        out[n] = count - 1
    return out


@njit(cache=True)
def _window(p, radius, count):
    """(first, last) position of the search window around `p`, shifted inwards
    at the borders so that it keeps 2 * radius + 1 positions where it can."""
    first = min(max(p - radius, 0), max(count - 1 - 2 * radius, 0))
    return first, min(first + 2 * radius, count - 1)


@njit(cache=True)
def _window_distances(image, c0, c1, ref, k, lo, size, dist):
    """dist[:count] = the sums over channels c0..c1-1 and the patch of the squared
    differences between the patch at `ref` and each patch of the window starting
    at `lo` with `size` positions per axis, in raster order. A row of the window
    at a time, each row of the patch added into it five, three or one values a
    pass (:func:`_add_five`): the row's sums stay in the first-level cache (the
    whole window's, 146 KB for grey frames in strong noise, did not), and each
    is loaded and stored once a pass (one value a pass: 1.3 to 1.8 times as
    long). The innermost loops run along the row (contiguous: they vectorise)."""
    n = size[2]
    for iz in range(size[0]):
        for iy in range(size[1]):
            base = (iz * size[1] + iy) * n
            sums = dist[base:base + n]
            for ix in range(n):
                sums[ix] = 0.0
            for c in range(c0, c1):
                for dz in range(k[0]):
                    for dy in range(k[1]):
                        p = image[c, ref[0] + dz, ref[1] + dy, ref[2]:ref[2] + k[2]]
                        row = image[c, lo[0] + iz + dz, lo[1] + iy + dy]
                        dx = 0
                        while dx + 5 <= k[2]:
                            _add_five(p[dx:dx + 5], row[lo[2] + dx:lo[2] + dx + n + 4], sums)
                            dx += 5
                        while dx + 3 <= k[2]:
                            _add_three(p[dx:dx + 3], row[lo[2] + dx:lo[2] + dx + n + 2], sums)
                            dx += 3
                        while dx < k[2]:
                            _add_squares(np.float64(p[dx]), row[lo[2] + dx:lo[2] + dx + n], sums)
                            dx += 1


@njit(cache=True, inline="always")
def _add_five(p, row, sums):
    """sums[i] += the sum over j < 5 of (p[j] - row[i + j])^2, in float64."""
    p0, p1, p2 = np.float64(p[0]), np.float64(p[1]), np.float64(p[2])
    p3, p4 = np.float64(p[3]), np.float64(p[4])
    for i in range(sums.shape[0]):
        d0, d1 = p0 - np.float64(row[i]), p1 - np.float64(row[i + 1])
        d2, d3 = p2 - np.float64(row[i + 2]), p3 - np.float64(row[i + 3])
        d4 = p4 - np.float64(row[i + 4])
        sums[i] += ((d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)) + d4 * d4


@njit(cache=True, inline="always")
def _add_three(p, row, sums):
    """sums[i] += the sum over j < 3 of (p[j] - row[i + j])^2, in float64."""
    p0, p1, p2 = np.float64(p[0]), np.float64(p[1]), np.float64(p[2])
    for i in range(sums.shape[0]):
        d0, d1 = p0 - np.float64(row[i]), p1 - np.float64(row[i + 1])
        d2 = p2 - np.float64(row[i + 2])
        sums[i] += (d0 * d0 + d1 * d1) + d2 * d2


@njit(cache=True, inline="always")
def _add_squares(value, row, sums):
    """sums[i] += (value - row[i])^2, in float64."""
    for i in range(sums.shape[0]):
        d = value - np.float64(row[i])
        sums[i] += d * d


@njit(cache=True)
def _gather(image, c0, c1, members, n, k, out):
    """Rows 0..n-1 of `out`: the patches at `members`, channels c0..c1-1, flattened
    channel by channel in (z, y, x) order. (Copied from a view of each image row:
    a third faster than indexing the image for every value.)"""
    for i in range(n):
        m0, m1, m2 = members[i, 0], members[i, 1], members[i, 2]
        target = out[i]
        j = 0
        for c in range(c0, c1):
            for dz in range(k[0]):
                for dy in range(k[1]):
                    row = image[c, m0 + dz, m1 + dy]
                    for dx in range(k[2]):
                        target[j + dx] = row[m2 + dx]
                    j += k[2]


@njit(cache=True)
def _channel_variance(group, n, first, count):
    """Variance (over n - 1) of the values in columns first..first+count-1 of rows 0..n-1."""
    mean = 0.0
    for i in range(n):
        for j in range(first, first + count):
            mean += group[i, j]
    mean /= n * count
    total = 0.0
    for i in range(n):
        for j in range(first, first + count):
            d = group[i, j] - mean
            total += d * d
    return total / max(n * count - 1, 1), mean


@njit(cache=True)
def _cholesky(a, d):
    """The lower Cholesky factor of a[:d, :d], in place; False where a pivot is
    not clearly positive (a singular or indefinite matrix)."""
    largest = 0.0
    for i in range(d):
        largest = max(largest, a[i, i])
    floor = 1e-12 * largest
    for j in range(d):
        s = a[j, j]
        for m in range(j):
            s -= a[j, m] * a[j, m]
        if not s > floor:
            return False
        pivot = np.sqrt(s)
        a[j, j] = pivot
        for i in range(j + 1, d):
            s = a[i, j]
            for m in range(j):
                s -= a[i, m] * a[j, m]
            a[i, j] = s / pivot
    return True


@njit(cache=True, fastmath=_FUSED)
def _inverse_from_factor(factor, d, inverse):
    """inverse[:d, :d] = A^-1 for A = L L^T, L the lower triangle of factor[:d, :d]:
    A^-1 = L^-T L^-1, the sum over the rows r of L^-1 of the outer products
    r^T r. Row m of L^-1 solves r L = e_m from its last entry back, each entry
    found then taken out of the ones before it with a row of L: the inner loops
    run along rows (they vectorise). The lower triangle is summed, then copied."""
    for a in range(d):
        for b in range(a + 1):
            inverse[a, b] = 0.0
    row = np.empty(d)
    for m in range(d):  # row m of L^-1: entries 0..m
        for j in range(m):
            row[j] = 0.0
        row[m] = 1.0 / factor[m, m]
        for q in range(m, 0, -1):  # row[q] is final: take it out of entries 0..q-1
            value, source = row[q], factor[q]
            for j in range(q):
                row[j] -= value * source[j]
            row[q - 1] /= factor[q - 1, q - 1]
        for a in range(m + 1):
            value, target = row[a], inverse[a]
            for b in range(a + 1):
                target[b] += value * row[b]
    for a in range(d):
        for b in range(a):
            inverse[b, a] = inverse[a, b]


@njit(cache=True)
def _centre(rows, n, d, out):
    """Rows 0..n-1 of rows[:, :d] less their mean, into `out`."""
    mean = np.zeros(d)
    for i in range(n):
        for j in range(d):
            mean[j] += rows[i, j]
    for j in range(d):
        mean[j] /= n
    for i in range(n):
        for j in range(d):
            out[i, j] = rows[i, j] - mean[j]


@njit(cache=True)
def _few_patches_estimate(noisy, model, n, d, diagonal, centred, spare, gram, cross, out):
    """m + C (C + diagonal I)^-1 (x - m) for the n < d rows x of `noisy`, C the
    covariance of the rows of `model` (Y_b, centred) and m the noisy rows' mean.

    With C = Y_b^T Y_b / (n - 1), C (C + s I)^-1 = Y_b^T G^-1 Y_b where
    G = Y_b Y_b^T + (n - 1) s I is n x n (the push-through identity), so each
    row becomes m + ((x - m) Y_b^T) G^-1 Y_b: n x n products and one n x n
    Cholesky factor (G is positive definite) instead of a d x d inverse.
    `gram` and `cross` (at least n x n) are scratch.
    """
    _centre(model, n, d, centred)
    _centre(noisy, n, d, spare)
    transposed = np.empty((d, n))  # Y_b^T: G and (x - m) Y_b^T from its rows
    for i in range(n):
        for q in range(d):
            transposed[q, i] = centred[i, q]
    _outer_sums(transposed, d, n, gram)  # G's lower triangle
    for i in range(n):
        gram[i, i] += (n - 1) * diagonal
    if not _cholesky(gram, n):
        # G has no factor with one patch only (n = 1: G = 0, the image holds a
        # single patch position); then x = m, and the estimate is the patch itself.
        for i in range(n):
            for q in range(d):
                out[i, q] = noisy[i, q]
        return False
    products = np.zeros((n, n))
    _subtract_products(products, spare, n, d, n, -1.0, transposed, cross)  # (x - m) Y_b^T
    inverse = np.empty((n, n))
    _inverse_from_factor(gram, n, inverse)
    _subtract_products(products, cross, n, n, n, -1.0, inverse, products)  # ... G^-1
    for i in range(n):
        for q in range(d):
            out[i, q] = noisy[i, q] - spare[i, q]  # the mean
    _subtract_products(out, products, n, n, d, -1.0, centred, out)  # m + ... Y_b
    return True


@njit(cache=True)
def bayes_estimate(noisy, model, n, d, diagonal, shrink, centred, spare, covariance, inverse,
                   out, noise):
    """The Bayes estimate of the n patches (rows) of `noisy` (n x d), into `out`.

    The group's covariance A is that of the rows of `model` (`noisy` itself in
    the first step, the basic estimate's patches in the second) plus
    `diagonal` times the identity; with the group's mean m, every patch x is
    estimated as x - shrink * A^-1 (x - m), shrink = beta sigma^2. This is
    m + (A - shrink I) A^-1 (x - m) in the first step (the noisy covariance
    less the noise's, over the noisy one) and m + C (C + shrink I)^-1 (x - m)
    in the second (C the basic estimate's covariance, diagonal = shrink).
    Where A has no Cholesky factor, the patches are left as they are and False
    is returned. `centred`, `spare` (n x d), `covariance` and `inverse` (d x d)
    are scratch.

    With fewer patches than dimensions and a diagonal (step 2), the same
    estimate is made through the n x n system of the patches instead
    (:func:`_few_patches_estimate`), which costs less.

    With a noise covariance `noise` (d x d; 0 x 0: none), `diagonal` times it
    is added instead of times the identity, and the patches become
    x - shrink * C_N A^-1 (x - m): m + C (C + shrink C_N)^-1 (x - m).
    """
    coloured = noise.shape[0] > 0
    if diagonal > 0 and n < d and not coloured:
        return _few_patches_estimate(noisy, model, n, d, diagonal, centred, spare, covariance,
                                     inverse, out)
    scale = 1.0 / max(n - 1, 1)
    _centre(model, n, d, centred)
    _outer_sums(centred, n, d, covariance)  # lower triangle
    for a in range(d):
        for b in range(a + 1):
            covariance[a, b] *= scale
            if coloured:
                covariance[a, b] += diagonal * noise[a, b]
        if not coloured:
            covariance[a, a] += diagonal
    solvable = _cholesky(covariance, d)
    if not solvable:
        for i in range(n):
            for j in range(d):
                out[i, j] = noisy[i, j]
        return False
    _inverse_from_factor(covariance, d, inverse)
    if coloured:  # A^-1 C_N, through `covariance` (its factor is no longer needed)
        covariance[:d, :d] = 0.0
        _subtract_products(covariance, inverse, d, d, d, -1.0, noise, covariance)
        inverse[:d, :d] = covariance[:d, :d]
    _centre(noisy, n, d, centred)  # the noisy rows, centred on their own mean
    # out = noisy - shrink * centred A^-1 (C_N), its transpose (A^-1 and C_N are symmetric)
    _subtract_products(noisy, centred, n, d, d, shrink, inverse, out)
    return True


@njit(cache=True, fastmath=_FUSED)
def _outer_sums(rows, n, d, out):
    """The lower triangle of out[:d, :d] = the sum over rows 0..n-1 of rows[:, :d]
    of their outer products: four rows at a time into two rows of the triangle
    at a time, so that each value loaded serves several multiply-adds (loads and
    stores, not arithmetic, limited the plain form: 2.2 times as long)."""
    for a in range(d):
        for b in range(a + 1):
            out[a, b] = 0.0
    i = 0
    while i + 4 <= n:
        _add_four_outer(rows[i], rows[i + 1], rows[i + 2], rows[i + 3], d, out)
        i += 4
    for i in range(i, n):
        r0 = rows[i]
        for a in range(d):
            v0, target = r0[a], out[a]
            for b in range(a + 1):
                target[b] += v0 * r0[b]


@njit(cache=True, fastmath=_FUSED, inline="always")
def _add_four_outer(r0, r1, r2, r3, d, out):
    """The lower triangle of out[:d, :d] += the outer products of the rows r0..r3."""
    a = 0
    while a + 2 <= d:
        v0, v1, v2, v3 = r0[a], r1[a], r2[a], r3[a]
        u0, u1, u2, u3 = r0[a + 1], r1[a + 1], r2[a + 1], r3[a + 1]
        t0, t1 = out[a], out[a + 1]
        for b in range(a + 1):
            x0, x1, x2, x3 = r0[b], r1[b], r2[b], r3[b]
            t0[b] += (v0 * x0 + v1 * x1) + (v2 * x2 + v3 * x3)
            t1[b] += (u0 * x0 + u1 * x1) + (u2 * x2 + u3 * x3)
        t1[a + 1] += (u0 * u0 + u1 * u1) + (u2 * u2 + u3 * u3)
        a += 2
    if a < d:
        v0, v1, v2, v3 = r0[a], r1[a], r2[a], r3[a]
        t0 = out[a]
        for b in range(a + 1):
            t0[b] += (v0 * r0[b] + v1 * r1[b]) + (v2 * r2[b] + v3 * r3[b])


@njit(cache=True, fastmath=_FUSED)
def _subtract_products(start, rows, n, inner, width, factor, matrix, out):
    """out[i, :width] = start[i, :width] - factor * rows[i, :inner] @
    matrix[:inner, :width] for rows 0..n-1: four rows at a time, the matrix's
    rows four at a time (as in _outer_sums, each value loaded serves several
    multiply-adds; two rows at a time took 1.15 times as long), every row's
    sums in the same order. `out` may be `start`."""
    i = 0
    while i + 4 <= n:
        _subtract_four(start, rows, i, inner, width, factor, matrix, out)
        i += 4
    for i in range(i, n):
        _subtract_one(start, rows, i, inner, width, factor, matrix, out)


@njit(cache=True, fastmath=_FUSED, inline="always")
def _subtract_four(start, rows, i, inner, width, factor, matrix, out):
    """_subtract_products for rows i to i + 3."""
    t0, t1, t2, t3 = out[i], out[i + 1], out[i + 2], out[i + 3]
    r0, r1, r2, r3 = rows[i], rows[i + 1], rows[i + 2], rows[i + 3]
    for j in range(width):
        t0[j], t1[j] = start[i, j], start[i + 1, j]
        t2[j], t3[j] = start[i + 2, j], start[i + 3, j]
    a = 0
    while a + 4 <= inner:
        m0, m1, m2, m3 = matrix[a], matrix[a + 1], matrix[a + 2], matrix[a + 3]
        v0, v1, v2, v3 = factor * r0[a], factor * r0[a + 1], factor * r0[a + 2], factor * r0[a + 3]
        u0, u1, u2, u3 = factor * r1[a], factor * r1[a + 1], factor * r1[a + 2], factor * r1[a + 3]
        w0, w1, w2, w3 = factor * r2[a], factor * r2[a + 1], factor * r2[a + 2], factor * r2[a + 3]
        z0, z1, z2, z3 = factor * r3[a], factor * r3[a + 1], factor * r3[a + 2], factor * r3[a + 3]
        for j in range(width):
            x0, x1, x2, x3 = m0[j], m1[j], m2[j], m3[j]
            t0[j] -= (v0 * x0 + v1 * x1) + (v2 * x2 + v3 * x3)
            t1[j] -= (u0 * x0 + u1 * x1) + (u2 * x2 + u3 * x3)
            t2[j] -= (w0 * x0 + w1 * x1) + (w2 * x2 + w3 * x3)
            t3[j] -= (z0 * x0 + z1 * x1) + (z2 * x2 + z3 * x3)
        a += 4
    for a in range(a, inner):
        m0, v0, u0 = matrix[a], factor * r0[a], factor * r1[a]
        w0, z0 = factor * r2[a], factor * r3[a]
        for j in range(width):
            t0[j] -= v0 * m0[j]
            t1[j] -= u0 * m0[j]
            t2[j] -= w0 * m0[j]
            t3[j] -= z0 * m0[j]


@njit(cache=True, fastmath=_FUSED, inline="always")
def _subtract_one(start, rows, i, inner, width, factor, matrix, out):
    """_subtract_products for row i, its sums in _subtract_four's order."""
    t0, r0 = out[i], rows[i]
    for j in range(width):
        t0[j] = start[i, j]
    a = 0
    while a + 4 <= inner:
        m0, m1, m2, m3 = matrix[a], matrix[a + 1], matrix[a + 2], matrix[a + 3]
        v0, v1, v2, v3 = factor * r0[a], factor * r0[a + 1], factor * r0[a + 2], factor * r0[a + 3]
        for j in range(width):
            t0[j] -= (v0 * m0[j] + v1 * m1[j]) + (v2 * m2[j] + v3 * m3[j])
        a += 4
    for a in range(a, inner):
        m0, v0 = matrix[a], factor * r0[a]
        for j in range(width):
            t0[j] -= v0 * m0[j]


@njit(cache=True)
def _clamped_estimate(noisy, n, d, shrink, centred, covariance, gain, out):
    """m + U diag(f) U^T (x - m) for the n rows x of `noisy` (n x d), where
    C = U diag(lambda) U^T is the rows' covariance and f = max(lambda - shrink,
    0) / lambda: the first step's (C - shrink I) C^-1 with each factor clamped
    to [0, 1]. Unclamped, a direction in which the group varies less than the
    noise (lambda < shrink: too few patches for the dimensions, or noise that is
    not white, weaker at the high frequencies than `shrink` says) would get a
    negative factor and the patch's deviation from the mean along it amplified
    and flipped; clamped, the group's mean stands there. `covariance` and
    `gain` (d x d) and `centred` (n x d) are scratch. Always True.
    """
    _centre(noisy, n, d, centred)
    scale = 1.0 / max(n - 1, 1)
    for a in range(d):
        for b in range(a + 1):
            total = 0.0
            for i in range(n):
                total += centred[i, a] * centred[i, b]
            covariance[a, b] = total * scale
            covariance[b, a] = total * scale
    values, vectors = np.linalg.eigh(np.ascontiguousarray(covariance[:d, :d]))
    factors = np.zeros(d)
    for a in range(d):
        if values[a] > shrink:
            factors[a] = (values[a] - shrink) / values[a]
    for a in range(d):  # the gain U diag(f) U^T, symmetric
        for b in range(a + 1):
            total = 0.0
            for q in range(d):
                total += vectors[a, q] * factors[q] * vectors[b, q]
            gain[a, b] = total
            gain[b, a] = total
    for i in range(n):
        for j in range(d):
            out[i, j] = noisy[i, j] - centred[i, j]  # the mean
        for a in range(d):
            value = centred[i, a]
            if value != 0.0:
                for j in range(d):
                    out[i, j] += value * gain[a, j]
    return True


@njit(cache=True)
def _moved_windows(image, c0, c1, ref, k, counts, lo, hi, moves, block, half, dist, where):
    """Frames whose content moves (`moves`: (Z, 2 S + 1, BY, BX, 2), where the
    content of each block of `block` pixels a side of each plane went in the
    planes up to S before and after it; none: 0 planes): for each other plane z
    of the window [lo, hi] (at most S from the reference's), the window of `half`
    radii (y, x) around where the content of the reference's block (the one
    that holds its centre) went, ref + moves[ref[0], S + z - ref[0], by, bx]
    (shifted inwards at the borders), its distances into `dist` and positions
    into `where`, plane by plane in raster order; those that the window around
    the reference holds get an infinite distance (they are candidates once).
    The number of candidates added."""
    added = 0
    if moves.shape[0] == 0:
        return added
    span = moves.shape[1] // 2
    by = min((ref[1] + k[1] // 2) // block, moves.shape[2] - 1)
    bx = min((ref[2] + k[2] // 2) // block, moves.shape[3] - 1)
    for z in range(max(lo[0], ref[0] - span), min(hi[0], ref[0] + span) + 1):
        if z == ref[0]:
            continue
        move = moves[ref[0], span + z - ref[0], by, bx]
        a1, b1 = _window(ref[1] + move[0], half[0], counts[1])
        a2, b2 = _window(ref[2] + move[1], half[1], counts[2])
        if lo[1] <= a1 and b1 <= hi[1] and lo[2] <= a2 and b2 <= hi[2]:
            continue  # within the usual window
        size = (1, b1 - a1 + 1, b2 - a2 + 1)
        _window_distances(image, c0, c1, ref, k, (z, a1, a2), size, dist[added:])
        for i in range(size[1] * size[2]):
            y, x = a1 + i // size[2], a2 + i % size[2]
            where[added + i, 0], where[added + i, 1], where[added + i, 2] = z, y, x
            if lo[1] <= y <= hi[1] and lo[2] <= x <= hi[2]:
                dist[added + i] = np.inf
        added += size[1] * size[2]
    return added


@njit(cache=True)
def _find_group(image, c0, c1, ref, k, radius, counts, group_size, tau, dist, cap, moves,
                block, half, where):
    """(members, n): the positions, in raster order, of the `group_size` patches
    of the window around `ref` most similar to it (sum of squared differences
    over channels c0..c1-1; of equal distances, the first in raster order), and
    of every further one whose distance is below `tau`; but where more than
    `cap` (if above group_size) lie below tau, of the `cap` most similar.
    Frames whose content moves: the candidates of the moved windows
    (:func:`_moved_windows`) follow the window's, in their order."""
    lo0, hi0 = _window(ref[0], radius[0], counts[0])
    lo1, hi1 = _window(ref[1], radius[1], counts[1])
    lo2, hi2 = _window(ref[2], radius[2], counts[2])
    size = (hi0 - lo0 + 1, hi1 - lo1 + 1, hi2 - lo2 + 1)
    _window_distances(image, c0, c1, ref, k, (lo0, lo1, lo2), size, dist)
    usual = size[0] * size[1] * size[2]
    m = usual + _moved_windows(image, c0, c1, ref, k, counts, (lo0, lo1, lo2), (hi0, hi1, hi2),
                               moves, block, half, dist[usual:], where)
    valid = m
    for i in range(usual, m):
        if dist[i] == np.inf:
            valid -= 1
    n = min(group_size, valid)
    if cap > group_size:
        within = 0
        for i in range(m):
            if dist[i] < tau:
                within += 1
        if within > cap:
            n, tau = min(cap, valid), 0.0
    # The n closest (ties: first in raster order) and every one closer than tau:
    # the candidates below the n-th smallest distance, then those equal to it.
    kth = np.partition(dist[:m], n - 1)[n - 1]
    below = 0
    for i in range(m):
        if dist[i] < kth:
            below += 1
    ties = n - below  # candidates at the n-th distance that make up the n
    members = np.empty((m, 3), np.int64)
    count = 0
    for i in range(m):
        keep = dist[i] < kth or dist[i] < tau
        if not keep and dist[i] == kth and ties > 0:
            keep = True
            ties -= 1
        if keep and i >= usual:
            members[count, 0] = where[i - usual, 0]
            members[count, 1] = where[i - usual, 1]
            members[count, 2] = where[i - usual, 2]
            count += 1
        elif keep:
            members[count, 0] = lo0 + i // (size[1] * size[2])
            members[count, 1] = lo1 + (i // size[2]) % size[1]
            members[count, 2] = lo2 + i % size[2]
            count += 1
    n = count
    return members[:n], n


@njit(cache=True)
def _aggregate(estimates, members, n, channels, k, num, weight):
    """Add the n estimated patches (rows: channel by channel, (z, y, x) order)
    to the numerator and 1 per pixel to the weight."""
    for i in range(n):
        z0, y0, x0 = members[i, 0], members[i, 1], members[i, 2]
        j = 0
        for c in range(channels):
            for dz in range(k[0]):
                for dy in range(k[1]):
                    for dx in range(k[2]):
                        num[c, z0 + dz, y0 + dy, x0 + dx] += estimates[i, j]
                        j += 1
        for dz in range(k[0]):
            for dy in range(k[1]):
                for dx in range(k[2]):
                    weight[z0 + dz, y0 + dy, x0 + dx] += 1.0


@njit(cache=True)
def _mark(mask, start, stop, members, n, k):
    """Mark the members, and their neighbours along every axis that the patch
    (of widths `k`) spans, that lie in the tile [start, stop) as estimated. A
    neighbour shares all but one row of an estimated patch; along an axis of
    width 1 (time, for 2-D patches of frames) it shares nothing and was not
    estimated: marking it left the last frames to other frames' groups."""
    for i in range(n):
        _mark_one(mask, start, stop, members[i, 0], members[i, 1], members[i, 2])
        for step in (-1, 1):
            if k[0] > 1:
                _mark_one(mask, start, stop, members[i, 0] + step, members[i, 1], members[i, 2])
            if k[1] > 1:
                _mark_one(mask, start, stop, members[i, 0], members[i, 1] + step, members[i, 2])
            if k[2] > 1:
                _mark_one(mask, start, stop, members[i, 0], members[i, 1], members[i, 2] + step)


@njit(cache=True, inline="always")
def _mark_one(mask, start, stop, p0, p1, p2):
    """Mark position (p0, p1, p2) as estimated if it lies in the tile."""
    if start[0] <= p0 < stop[0] and start[1] <= p1 < stop[1] and start[2] <= p2 < stop[2]:
        mask[p0 - start[0], p1 - start[1], p2 - start[2]] = False


@njit(cache=True)
def _is_flat(group, n, size, channels, flat_limit):
    """The flat-area rule: whether the per-channel variances of the group's values,
    summed, are below flat_limit per channel (never with flat_limit 0)."""
    if flat_limit <= 0:
        return False
    total = 0.0
    for c in range(channels):
        total += _channel_variance(group, n, c * size, size)[0]
    return total < flat_limit * channels


@njit(cache=True)
def _fill_means(source, n, size, channels, estimates):
    """Every value of the n estimates becomes its channel's mean in `source`."""
    for c in range(channels):
        estimates[:n, c * size:(c + 1) * size] = _channel_variance(source, n, c * size,
                                                                   size)[1]


@njit(cache=True)
def _transform_rows(rows, n, first, count, matrix, out):
    """out[i, first:first+count] = matrix[first:, first:] (the count x count block)
    times rows[i, first:first+count], for rows 0..n-1: the whitening of the
    noise, or its inverse, applied to one channel's values or to all."""
    for i in range(n):
        for a in range(first, first + count):
            total = 0.0
            for b in range(first, first + count):
                total += matrix[a, b] * rows[i, b]
            out[i, a] = total


@njit(cache=True)
def _first_step_group(noisy, members, n, k, flat_limit, shrink, clamp, whitening, scratch,
                      estimates):
    """Step 1: every channel of the group estimated on its own (with the flat-area
    rule over all channels at once) into `estimates` (n x channels * K).

    With `whitening` (W, W^-1, C_N), each channel's values are multiplied by
    its diagonal block of W first (so that its noise is white, of level 1,
    where W = C_N^-1/2) and the estimate by that of W^-1 after: the estimate is
    then m + (C - beta C_N) C^-1 (x - m) (with the gains clamped in the
    eigenbasis of C relative to C_N)."""
    group, values, out, centred, covariance, inverse, raw = scratch
    channels = noisy.shape[0]
    size = k[0] * k[1] * k[2]
    whiten, unwhiten = whitening[0], whitening[1]
    _gather(noisy, 0, channels, members, n, k, raw)
    if _is_flat(raw, n, size, channels, flat_limit):
        _fill_means(raw, n, size, channels, estimates)
        return
    source = raw
    if whiten.shape[0]:
        for c in range(channels):
            _transform_rows(raw, n, c * size, size, whiten, group)
        source = group
    for c in range(channels):
        values[:n, :size] = source[:n, c * size:(c + 1) * size]
        if clamp:
            _clamped_estimate(values, n, size, shrink, centred, covariance, inverse, out)
        else:  # no diagonal, no C_N (step 1 has none): the spare buffer is not used
            bayes_estimate(values, values, n, size, 0.0, shrink, centred, group, covariance,
                           inverse, out, whitening[2])
        estimates[:n, c * size:(c + 1) * size] = out[:n, :size]
    if whiten.shape[0]:
        for c in range(channels):
            _transform_rows(estimates, n, c * size, size, unwhiten, raw)
        estimates[:n] = raw[:n]


@njit(cache=True)
def _second_step_group(noisy, basic, members, n, k, flat_limit, shrink, noise, scratch,
                       estimates):
    """Step 2: the channels together, with the covariance of the basic estimate's
    patches (flat area: the basic estimate's mean, per channel); `noise`: C_N in
    place of the identity (0 x 0: the identity), m + C_b (C_b + beta C_N)^-1 (x - m)."""
    group, model, spare, centred, covariance, inverse, _ = scratch
    channels = noisy.shape[0]
    size = k[0] * k[1] * k[2]
    _gather(noisy, 0, channels, members, n, k, group)
    _gather(basic, 0, channels, members, n, k, model)
    if _is_flat(group, n, size, channels, flat_limit):
        _fill_means(model, n, size, channels, estimates)
        return
    bayes_estimate(group, model, n, channels * size, shrink, shrink, centred, spare,
                   covariance, inverse, estimates, noise)


@njit(cache=True, nogil=True)
def bayes_tile(noisy, basic, num, weight, first_step, patch_radius, search_radius, stride,
               group_size, tau, shrink, flat_limit, clamp, whitening, start, stop, refs0,
               cap, moves, block, half):
    """One step of NL-Bayes for the reference positions of the tile [start, stop),
    in raster order but along Z, where they are taken in the order of `refs0`;
    adds to `num` (C, Z, Y, X) and `weight` (Z, Y, X), float64. `cap`: step 2's
    groups, see :func:`_find_group` (0: none).

    Step 1 (`first_step`) groups by the first channel of `noisy`; step 2 by all
    channels of `basic` (the step-1 result), keeping also patches closer than
    `tau`. `shrink` = beta sigma^2; `flat_limit` = gamma sigma^2; `clamp`: step 1's
    gains clamped to [0, 1] (:func:`_clamped_estimate`). `whitening`: (W, W^-1,
    C_N), channels * K square, for noise of covariance C_N over a patch (W =
    C_N^-1/2 of its diagonal blocks, for step 1, whose `shrink` is then for
    noise of level 1; step 2 uses C_N itself); three 0 x 0 arrays for white
    noise. `moves` ((Z, 2 S + 1, BY, BX, 2), or 0 planes), `block` and `half`
    (y, x): frames whose content moves, see :func:`_moved_windows`.
    """
    channels = noisy.shape[0]
    k = (2 * patch_radius[0] + 1, 2 * patch_radius[1] + 1, 2 * patch_radius[2] + 1)
    counts = (noisy.shape[1] - k[0] + 1, noisy.shape[2] - k[1] + 1, noisy.shape[3] - k[2] + 1)
    size = k[0] * k[1] * k[2]
    window = ((2 * search_radius[0] + 1) * (2 * search_radius[1] + 1)
              * (2 * search_radius[2] + 1))
    moved = 0 if moves.shape[0] == 0 else \
        2 * search_radius[0] * (2 * half[0] + 1) * (2 * half[1] + 1)
    most = max(window + moved, group_size)
    dist = np.empty(most, np.float64)
    where = np.empty((moved, 3), np.int64)
    width = channels * size
    dims = size if first_step else width
    # group, model (step 2) or one channel's values (step 1), out, centred,
    # covariance, inverse, unwhitened values
    scratch = (np.empty((most, width)), np.empty((most, width)), np.empty((most, width)),
               np.empty((most, width)), np.empty((dims, dims)), np.empty((dims, dims)),
               np.empty((most, width)))
    estimates = np.empty((most, width), np.float64)
    mask = np.ones((stop[0] - start[0], stop[1] - start[1], stop[2] - start[2]), np.bool_)
    refs1 = ref_positions(counts[1], stride[1])
    refs2 = ref_positions(counts[2], stride[2])
    ref = np.empty(3, np.int64)
    for r0 in refs0:
        if not start[0] <= r0 < stop[0]:
            continue
        for r1 in refs1:
            if not start[1] <= r1 < stop[1]:
                continue
            for r2 in refs2:
                if not start[2] <= r2 < stop[2]:
                    continue
                if not mask[r0 - start[0], r1 - start[1], r2 - start[2]]:
                    continue
                ref[0], ref[1], ref[2] = r0, r1, r2
                if first_step:
                    members, n = _find_group(noisy, 0, 1, ref, k, search_radius, counts,
                                             group_size, 0.0, dist, 0, moves, block, half,
                                             where)
                    _first_step_group(noisy, members, n, k, flat_limit, shrink, clamp, whitening,
                                      scratch, estimates)
                else:
                    members, n = _find_group(basic, 0, channels, ref, k, search_radius,
                                             counts, group_size, tau, dist, cap, moves,
                                             block, half, where)
                    _second_step_group(noisy, basic, members, n, k, flat_limit, shrink,
                                       whitening[2], scratch, estimates)
                _aggregate(estimates, members, n, channels, k, num, weight)
                _mark(mask, start, stop, members, n, k)
