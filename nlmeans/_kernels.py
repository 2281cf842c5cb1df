"""Numba kernels for NL-means (private: arrays in, arrays out, no validation).

Every array here is laid out channel-first and always has three spatial axes,
``(C, Z, Y, X)``: a 2-D image is a volume of depth 1 with zero radii along Z,
so one kernel serves 2-D, 2-D with channels and 3-D volumes.

The kernel is exact (it computes the textbook formula, not an approximation of
it) and costs O(N * D^n) whatever the patch size: for each search offset ``t``
it forms the image of squared differences ``(v(x) - v(x + t))**2``, box-sums it
over the patch with running sums, turns the sums into weights and accumulates.
Because ``w(x, x + t) == w(x + t, x)`` only half of the offsets are visited;
each visit updates both ends of every pair.

Work is split into tiles of the output that are processed independently (one
``prange`` iteration each), so threads never write to the same memory and the
extra memory is a few tile-sized buffers per thread, whatever the image size.
A tile recomputes the weights of the pairs that reach into its neighbours,
which costs a few per cent for tiles much larger than the search radius.

Precision: every intermediate has the dtype of the padded input (float32 or
float64); ``exp`` is a polynomial accurate to ~4e-7 relative in float32 and
~1e-14 in float64 (Numba has no vectorised libm exp on this platform).
"""

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

# Weights below exp(-UNDERFLOW) are flushed to zero. The float32 limit keeps
# products out of the denormal range (slow on x86); the float64 one is where
# exp itself underflows.
_UNDERFLOW32 = 87.0
_UNDERFLOW64 = 708.0


def exp_neg(z):
    """exp(-z) for z >= 0 (Python fallback of the compiled overload)."""
    return np.exp(-z)


@overload(exp_neg, inline="always")
def _exp_neg_overload(z):
    # Both versions: exp(-z) = 2**k * exp(r), k = round(-z / ln 2), |r| <= ln2 / 2,
    # exp(r) by its Taylor polynomial, 2**k built directly in the exponent bits.
    # Branch-free so that LLVM vectorises the loops that call it.
    if isinstance(z, types.Float) and z.bitwidth == 32:

        def impl32(z):
            x = min(z, np.float32(_UNDERFLOW32))
            k = np.floor(np.float32(0.5) - x * np.float32(1.4426950408889634))
            r = (-x - k * np.float32(0.693145751953125)) - k * np.float32(1.428606765330187e-06)
            p = np.float32(1.0 / 5040.0)
            p = p * r + np.float32(1.0 / 720.0)
            p = p * r + np.float32(1.0 / 120.0)
            p = p * r + np.float32(1.0 / 24.0)
            p = p * r + np.float32(1.0 / 6.0)
            p = p * r + np.float32(0.5)
            p = p * r + np.float32(1.0)
            p = p * r + np.float32(1.0)
            scale = np.int32((np.int32(k) + np.int32(127)) << np.int32(23)).view(np.float32)
            weight = p * scale
            return weight if z < np.float32(_UNDERFLOW32) else np.float32(0.0)

        return impl32
    if isinstance(z, types.Float):

        def impl64(z):
            x = min(z, _UNDERFLOW64)
            k = np.floor(0.5 - x * 1.4426950408889634)
            r = (-x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10
            p = 1.0 / 479001600.0
            p = p * r + 1.0 / 39916800.0
            p = p * r + 1.0 / 3628800.0
            p = p * r + 1.0 / 362880.0
            p = p * r + 1.0 / 40320.0
            p = p * r + 1.0 / 5040.0
            p = p * r + 1.0 / 720.0
            p = p * r + 1.0 / 120.0
            p = p * r + 1.0 / 24.0
            p = p * r + 1.0 / 6.0
            p = p * r + 0.5
            p = p * r + 1.0
            p = p * r + 1.0
            scale = np.int64((np.int64(k) + np.int64(1023)) << np.int64(52)).view(np.float64)
            weight = p * scale
            return weight if z < _UNDERFLOW64 else 0.0

        return impl64
    return None


@njit(cache=True)
def exp_neg_array(z):
    """Elementwise compiled exp(-z) (exposed for testing the polynomial)."""
    out = np.empty_like(z)
    flat_in = z.ravel()
    flat_out = out.ravel()
    for i in range(flat_in.size):
        flat_out[i] = exp_neg(flat_in[i])
    return out


@njit(cache=True)
def half_offsets(search_radius):
    """Search offsets t > 0 in lexicographic (z, y, x) order: one of each pair {t, -t}."""
    rz, ry, rx = search_radius
    count = ((2 * rz + 1) * (2 * ry + 1) * (2 * rx + 1) - 1) // 2
    offsets = np.empty((count, 3), dtype=np.int64)
    n = 0
    for tz in range(0, rz + 1):
        for ty in range(-ry, ry + 1):
            for tx in range(-rx, rx + 1):
                if tz == 0 and (ty < 0 or (ty == 0 and tx <= 0)):
                    continue
                offsets[n, 0] = tz
                offsets[n, 1] = ty
                offsets[n, 2] = tx
                n += 1
    return offsets


@njit(cache=True, fastmath=True)
def _squared_differences(padded, origin, shift, out):
    """out[i, j, k] = sum_c (padded[c, o + (i, j, k)] - padded[c, o + shift + (i, j, k)])**2."""
    oz, oy, ox = origin
    sz, sy, sx = shift
    channels = padded.shape[0]
    nz, ny, nx = out.shape
    for i in range(nz):
        for j in range(ny):
            row = out[i, j]
            a = padded[0, oz + i, oy + j, ox:ox + nx]
            b = padded[0, oz + sz + i, oy + sy + j, ox + sx:ox + sx + nx]
            for k in range(nx):
                diff = a[k] - b[k]
                row[k] = diff * diff
            for c in range(1, channels):
                a = padded[c, oz + i, oy + j, ox:ox + nx]
                b = padded[c, oz + sz + i, oy + sy + j, ox + sx:ox + sx + nx]
                for k in range(nx):
                    diff = a[k] - b[k]
                    row[k] += diff * diff


@njit(cache=True, fastmath=True)
def _box_sum_first_axis(src, width, out):
    """Running sums along axis 0 of 2-D arrays: out[i] = sum(src[i:i + width])."""
    n, m = out.shape
    for k in range(m):
        out[0, k] = src[0, k]
    for a in range(1, width):
        for k in range(m):
            out[0, k] += src[a, k]
    for i in range(1, n):
        # The add/subtract form costs the same for every patch size.
        for k in range(m):
            out[i, k] = out[i - 1, k] + src[i + width - 1, k] - src[i - 1, k]


@njit(cache=True, fastmath=True)
def _box_sum_planes(src, width, out):
    """Box sum of `width` planes along axis 0 of 3-D arrays."""
    nz, ny, nx = out.shape
    # Planes are contiguous, so view (Z, Y, X) as (Z, Y * X) and sum along Z.
    _box_sum_first_axis(src.reshape((src.shape[0], src.shape[1] * src.shape[2])), width,
                        out.reshape((nz, ny * nx)))


@njit(cache=True, fastmath=True)
def _box_sum_rows(src, width, out):
    """Box sum of `width` rows along axis 1 of 3-D arrays."""
    for i in range(out.shape[0]):
        _box_sum_first_axis(src[i], width, out[i])


@njit(cache=True, fastmath=True)
def _box_sum_last_to_weights(src, width, threshold, inv_scale, out):
    """Box sum along the last axis, then weight = exp(-max(sum - threshold, 0) * inv_scale)."""
    nz, ny, nx = out.shape
    for i in range(nz):
        for j in range(ny):
            row_in = src[i, j]
            row_out = out[i, j]
            for k in range(nx):
                row_out[k] = row_in[k]
            # Shifted adds vectorise; a running sum along the contiguous axis would not.
            for a in range(1, width):
                for k in range(nx):
                    row_out[k] += row_in[k + a]
            zero = threshold - threshold  # 0 in the working dtype
            for k in range(nx):
                excess = max(row_out[k] - threshold, zero)
                row_out[k] = exp_neg(excess * inv_scale)


@njit(cache=True, fastmath=True)
def _accumulate(weights, w_origin, padded, v_origin, acc, weight_sum):
    """acc[c, q] += weights[w_origin + q] * padded[c, v_origin + q]; weight_sum[q] += weights[...].

    q runs over the whole tile (acc's spatial shape).
    """
    wz, wy, wx = w_origin
    vz, vy, vx = v_origin
    channels, nz, ny, nx = acc.shape
    for i in range(nz):
        for j in range(ny):
            w = weights[wz + i, wy + j, wx:wx + nx]
            ws = weight_sum[i, j]
            for k in range(nx):
                ws[k] += w[k]
            for c in range(channels):
                v = padded[c, vz + i, vy + j, vx:vx + nx]
                a = acc[c, i, j]
                for k in range(nx):
                    a[k] += w[k] * v[k]


@njit(cache=True, fastmath=True)
def _denoise_tile(padded, out, start, stop, patch_radius, search_radius, offsets,
                  threshold, inv_scale):
    """Pixel-wise NL-means for the output tile [start, stop) (output coordinates)."""
    channels = padded.shape[0]
    pz, py, px = patch_radius
    sz, sy, sx = search_radius
    # Offset between output and padded coordinates on each axis.
    mz, my, mx = sz + pz, sy + py, sx + px
    nz, ny, nx = stop[0] - start[0], stop[1] - start[1], stop[2] - start[2]
    dtype = padded.dtype

    acc = np.empty((channels, nz, ny, nx), dtype=dtype)
    weight_sum = np.ones((nz, ny, nx), dtype=dtype)
    # The centre pixel: weight 1, value v(x).
    for c in range(channels):
        acc[c] = padded[c, start[0] + mz:stop[0] + mz, start[1] + my:stop[1] + my,
                        start[2] + mx:stop[2] + mx]

    # Flat scratch buffers large enough for any offset; each offset views a
    # C-contiguous prefix of them with its own shape.
    bz_max, by_max, bx_max = nz + sz, ny + sy, nx + sx
    ext_size = (bz_max + 2 * pz) * (by_max + 2 * py) * (bx_max + 2 * px)
    diff_flat = np.empty(ext_size, dtype=dtype)
    zsum_flat = np.empty(ext_size if pz > 0 else 1, dtype=dtype)
    ysum_flat = np.empty(bz_max * by_max * (bx_max + 2 * px), dtype=dtype)
    weight_flat = np.empty(bz_max * by_max * bx_max, dtype=dtype)

    for n in range(offsets.shape[0]):
        tz, ty, tx = offsets[n, 0], offsets[n, 1], offsets[n, 2]
        # Positions p whose pair (p, p + t) touches the tile: p in tile or p + t in tile.
        lo_z, lo_y, lo_x = start[0] - max(tz, 0), start[1] - max(ty, 0), start[2] - max(tx, 0)
        hi_z, hi_y, hi_x = stop[0] - min(tz, 0), stop[1] - min(ty, 0), stop[2] - min(tx, 0)
        bz, by, bx = hi_z - lo_z, hi_y - lo_y, hi_x - lo_x
        ez, ey, ex = bz + 2 * pz, by + 2 * py, bx + 2 * px

        diff = diff_flat[:ez * ey * ex].reshape((ez, ey, ex))
        # Padded coordinates of the first patch element of the first position.
        _squared_differences(padded, (lo_z - pz + mz, lo_y - py + my, lo_x - px + mx),
                             (tz, ty, tx), diff)
        if pz > 0:
            zsum = zsum_flat[:bz * ey * ex].reshape((bz, ey, ex))
            _box_sum_planes(diff, 2 * pz + 1, zsum)
        else:
            zsum = diff
        ysum = ysum_flat[:bz * by * ex].reshape((bz, by, ex))
        _box_sum_rows(zsum, 2 * py + 1, ysum)
        weights = weight_flat[:bz * by * bx].reshape((bz, by, bx))
        _box_sum_last_to_weights(ysum, 2 * px + 1, threshold, inv_scale, weights)

        # Forward half: p in tile gets w(p, p + t) * v(p + t).
        _accumulate(weights, (start[0] - lo_z, start[1] - lo_y, start[2] - lo_x),
                    padded, (start[0] + tz + mz, start[1] + ty + my, start[2] + tx + mx),
                    acc, weight_sum)
        # Mirrored half: q = p + t in tile gets w(q - t, q) * v(q - t).
        _accumulate(weights, (start[0] - tz - lo_z, start[1] - ty - lo_y, start[2] - tx - lo_x),
                    padded, (start[0] - tz + mz, start[1] - ty + my, start[2] - tx + mx),
                    acc, weight_sum)

    for c in range(channels):
        out[c, start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]] = acc[c] / weight_sum


@njit(cache=True, parallel=True)
def nlmeans_pixelwise(padded, patch_radius, search_radius, threshold, inv_scale, tile_shape):
    """Pixel-wise NL-means of a mirrored, channel-first volume.

    Parameters
    ----------
    padded : (C, Z + 2 m_z, Y + 2 m_y, X + 2 m_x) float32 or float64, C-contiguous,
        mirrored by m_a = search_radius[a] + patch_radius[a] on each axis.
    patch_radius, search_radius : 3-tuples of int (z, y, x).
    threshold : float
        Subtracted from the patch sum of squared differences before the exponential
        (2 sigma^2 times the number of summed terms).
    inv_scale : float
        1 / (h^2 times the number of summed terms), so that the exponent is -d^2 / h^2.
    tile_shape : 3-tuple of int
        Output tile processed by one thread at a time.

    Returns
    -------
    (C, Z, Y, X) array of the padded input's dtype.
    """
    channels = padded.shape[0]
    shape = (padded.shape[1] - 2 * (search_radius[0] + patch_radius[0]),
             padded.shape[2] - 2 * (search_radius[1] + patch_radius[1]),
             padded.shape[3] - 2 * (search_radius[2] + patch_radius[2]))
    out = np.empty((channels, shape[0], shape[1], shape[2]), dtype=padded.dtype)
    offsets = half_offsets(search_radius)

    tiles_z = (shape[0] + tile_shape[0] - 1) // tile_shape[0]
    tiles_y = (shape[1] + tile_shape[1] - 1) // tile_shape[1]
    tiles_x = (shape[2] + tile_shape[2] - 1) // tile_shape[2]
    for tile in prange(tiles_z * tiles_y * tiles_x):
        iz = tile // (tiles_y * tiles_x)
        iy = (tile // tiles_x) % tiles_y
        ix = tile % tiles_x
        start = (iz * tile_shape[0], iy * tile_shape[1], ix * tile_shape[2])
        stop = (min(start[0] + tile_shape[0], shape[0]),
                min(start[1] + tile_shape[1], shape[1]),
                min(start[2] + tile_shape[2], shape[2]))
        _denoise_tile(padded, out, start, stop, patch_radius, search_radius, offsets,
                      threshold, inv_scale)
    return out
