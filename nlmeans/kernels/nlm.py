"""Numba kernels for NL-means (private: arrays in, arrays out, no validation).

Every array here is laid out channel-first and always has three spatial axes,
``(C, Z, Y, X)``: a 2-D image is a volume of depth 1 with zero radii along Z,
so one kernel serves 2-D, 2-D with channels and 3-D volumes.

The kernel is exact (it computes the textbook formula, not an approximation of
it) and costs O(N * D^n) whatever the patch size: for each search offset ``t``
it forms the image of squared differences ``(v(x) - v(x + t))**2``, box-sums it
over the patch with running sums, turns the sums into weights and accumulates.
Because ``w(x, x + t) == w(x + t, x)`` only half of the offsets are visited;
each visit updates both ends of every pair. In the plain pixel-wise case the
offsets of a row of the search window go four at a time, so that the
accumulators are loaded and stored once for four offsets.

Work is split into tiles of the output that are processed independently (one
call of a compiled tile function that releases the GIL, on a pool of Python
threads: :func:`run_tiles`), so threads never write to the same memory and the
extra memory is a few tile-sized buffers per thread, whatever the image size.
A tile recomputes the weights of the pairs that reach into its neighbours,
which costs a few per cent for tiles much larger than the search radius.

Precision: every intermediate has the dtype of the padded input (float32 or
float64); the exponential is a power of 2 with a polynomial accurate to ~2.4e-7
relative in float32 and ~1e-15 in float64 (Numba has no vectorised libm exp on
this platform).
"""

import glob
import itertools
import os
import threading

import numpy as np
from numba import get_num_threads, njit, types
from numba.core import cgutils, config
from numba.core.registry import cpu_target
from numba.extending import intrinsic, overload

from nlmeans.kernels.constants import ROW_RESTART, moved_radius


def _prefer_wide_vectors():
    """Let LLVM vectorise with 512-bit registers on CPUs that have AVX-512.

    LLVM's tuning for these CPUs prefers 256-bit vectors; with 512-bit ones
    this kernel runs 11-15 % faster (2-D grey, measured on a 2-core Xeon: half
    the instructions for the same work). Numba sets its code generator's
    CPU features once per process, so this applies to all Numba code compiled
    in the process afterwards. It is skipped when the user chose the target
    (NUMBA_CPU_NAME or NUMBA_CPU_FEATURES), when Numba's code generator exists
    already (too late to change), and with NLMEANS_WIDE_VECTORS=0.
    """
    if os.environ.get("NLMEANS_WIDE_VECTORS", "1") == "0":
        return False
    if config.CPU_NAME is not None or config.CPU_FEATURES is not None:
        return False
    if "_toplevel_target_context" in cpu_target.__dict__:
        return False
    import llvmlite.binding as llvm  # only here, before Numba makes its code generator

    features = llvm.get_host_cpu_features()
    if not features.get("avx512f"):
        return False
    config.CPU_FEATURES = features.flatten() + ",-prefer-256-bit"
    return True


WIDE_VECTORS = _prefer_wide_vectors()

# Numba's fastmath=True less "reassoc", for the one update whose rounding LLVM
# decided differently in the code it ran in the process that compiled the kernel
# and in the same kernel loaded from Numba's cache (float32 results up to 1e-4
# apart in a third of the pixels): same bytes whatever the cache held.
EXACT_ORDER = {"nnan", "ninf", "nsz", "arcp", "afn", "contract"}


@intrinsic
def _unowned(typingctx, array):
    """A view of `array` that holds no reference to its memory.

    Numba counts the references to an array's memory with an atomic add at
    every view it makes and drops; in the tile functions' per-row helpers
    (slices of rows, rings and accumulators, made and dropped once per row and
    offset) those counts took 7 % of the time on 512² grey and 8-9 % on 256-wide
    frames (one thread, OpenCV's windows), 2-3 % in the automatic mode. The tile
    functions pass their helpers such views: of the caller's arrays, alive for
    the whole call, and of their own buffers, made afresh in each call's
    arguments, so that the buffers (used there, in the loop) stay alive through
    the loop. The results are the same bytes.
    """
    def codegen(context, builder, signature, arguments):
        view = context.make_array(array)(context, builder, value=arguments[0])
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()

    return array(array), codegen


def _compiled(**options):
    """njit for the helpers, which only compiled code calls: without the wrappers
    that would let Python call them (each cost a few tenths of a second of the
    first run: 25 % of the automatic mode's compile time)."""
    return njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True, **options)


# Offsets whose weights are made and used together (see _fused_offsets).
_GROUP = 4
# The fused path makes rows of weights in whole blocks of this many values (one
# AVX-512 register of float32): a row of any other length ends in LLVM's 4-wide
# and scalar remainder loops (1-3 % of the time on 512-wide images).
_WHOLE_VECTORS = 16



def exp2_neg(x):
    """2**-x for x >= 0 (Python fallback of the compiled overload)."""
    return np.exp2(-x)


@overload(exp2_neg)
def _exp2_neg_overload(x):
    # 2**-x = 2**r * 2**-k with k = round(x) and r = k - x in [-1/2, 1/2]: both
    # exact in floating point, so no extended-precision reduction is needed.
    # 2**r is a polynomial, 2**-k is built in the exponent bits. Results below
    # the smallest normal number (x > ~125.5 in float32, ~1021.5 in float64) are
    # flushed to 0: denormal products are slow on x86. The flush is free: the
    # polynomial gives 2 * 2**r and the exponent field holds -k - 1, which is
    # clamped at 0 (the bit pattern of 0.0). Branch-free, so that LLVM
    # vectorises the loops that call it.
    if isinstance(x, types.Float) and x.bitwidth == 32:

        def impl32(x):
            x = min(x, np.float32(200.0))
            k = np.rint(x)
            r = k - x
            # 2 * 2**r: degree-5 polynomial fitted for the least largest relative
            # error on [-1/2, 1/2] (7.5e-8; 2.4e-7 with float32 rounding).
            p = np.float32(2 * 0.001327647151972771)
            p = p * r + np.float32(2 * 0.009675541330685163)
            p = p * r + np.float32(2 * 0.05550713274960701)
            p = p * r + np.float32(2 * 0.24022119723933866)
            p = p * r + np.float32(2 * 0.6931469670638644)
            p = p * r + np.float32(2 * 1.0000000716546547)
            # The bit pattern (126 - k) << 23, computed exactly in float32 (one
            # multiply-add) and clamped there: Numba widens int32 arithmetic to int64.
            bits = max(np.float32(126 * 2**23) - k * np.float32(2**23), np.float32(0.0))
            return p * np.int32(bits).view(np.float32)

        return impl32
    if isinstance(x, types.Float):

        def impl64(x):
            x = min(x, 1100.0)
            k = np.rint(x)
            y = (k - x) * 0.6931471805599453  # r ln 2, |y| <= 0.347
            # 2 * exp(y): Taylor polynomial of degree 12 (error < 1e-15).
            p = 2.0 / 479001600.0
            p = p * y + 2.0 / 39916800.0
            p = p * y + 2.0 / 3628800.0
            p = p * y + 2.0 / 362880.0
            p = p * y + 2.0 / 40320.0
            p = p * y + 2.0 / 5040.0
            p = p * y + 2.0 / 720.0
            p = p * y + 2.0 / 120.0
            p = p * y + 2.0 / 24.0
            p = p * y + 2.0 / 6.0
            p = p * y + 1.0
            p = p * y + 2.0
            p = p * y + 2.0
            bits = max(1022.0 * 2**52 - k * 2.0**52, 0.0)  # (1022 - k) << 52, exactly
            return p * np.int64(bits).view(np.float64)

        return impl64
    return None


@njit(cache=True, fastmath=True)
def exp2_neg_array(x):
    """Elementwise compiled 2**-x (exposed for testing the polynomial)."""
    out = np.empty_like(x)
    flat_in = x.ravel()
    flat_out = out.ravel()
    for i in range(flat_in.size):
        flat_out[i] = exp2_neg(flat_in[i])
    return out


def half_offsets(search_radius):
    """Search offsets t > 0 in lexicographic (z, y, x) order: one of each pair {t, -t}.

    Plain NumPy: it runs once per pass, and compiled it cost a third of a
    second of the first run."""
    grid = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in search_radius],
                                indexing="ij"), axis=-1).reshape(-1, 3)
    # The lexicographic order puts the positive half after the centre.
    return np.ascontiguousarray(grid[len(grid) // 2 + 1:], dtype=np.int64)


@_compiled(fastmath=True)
def _box_sum_first_axis(src, width, out):
    """Running sums along axis 0 of 2-D arrays: out[i] = sum(src[i:i + width]).

    The add/subtract form costs the same for every patch size. It starts afresh
    every ROW_RESTART rows, so that in a tile that starts at such a row of the
    image, the sums of a row do not depend on where the tile starts."""
    n, m = out.shape
    for i in range(n):
        if i % ROW_RESTART == 0:
            for k in range(m):
                out[i, k] = src[i, k]
            for a in range(1, width):
                for k in range(m):
                    out[i, k] += src[i + a, k]
        else:
            for k in range(m):
                out[i, k] = out[i - 1, k] + src[i + width - 1, k] - src[i - 1, k]


@_compiled(fastmath=True)
def _box_sum_planes(src, width, out):
    """Box sum of `width` planes along axis 0 of 3-D arrays."""
    nz, ny, nx = out.shape
    # Planes are contiguous, so view (Z, Y, X) as (Z, Y * X) and sum along Z.
    _box_sum_first_axis(src.reshape((src.shape[0], src.shape[1] * src.shape[2])), width,
                        out.reshape((nz, ny * nx)))


@_compiled(fastmath=True)
def _box_sum_row(row_in, width, row_out):
    """row_out[k] = sum(row_in[k:k + width])."""
    n = row_out.shape[0]
    c = row_in
    # Written out for the usual widths: one vectorised pass (a running sum along
    # the row would not vectorise). Other widths: shifted adds, one pass each.
    if width == 3:
        for k in range(n):
            row_out[k] = c[k] + c[k + 1] + c[k + 2]
    elif width == 5:
        for k in range(n):
            row_out[k] = c[k] + c[k + 1] + c[k + 2] + c[k + 3] + c[k + 4]
    elif width == 7:
        for k in range(n):
            row_out[k] = c[k] + c[k + 1] + c[k + 2] + c[k + 3] + c[k + 4] + c[k + 5] + c[k + 6]
    elif width == 9:
        for k in range(n):
            row_out[k] = (c[k] + c[k + 1] + c[k + 2] + c[k + 3] + c[k + 4] + c[k + 5] + c[k + 6]
                          + c[k + 7] + c[k + 8])
    else:
        for k in range(n):
            row_out[k] = c[k]
        for a in range(1, width):
            for k in range(n):
                row_out[k] += c[k + a]


@_compiled(fastmath=True)
def _box_filter(src, radius, planes, rows, out):
    """3-D box sum of (2 radius + 1) elements per axis; `planes` and `rows` are scratch
    (`planes` None for 2-D patches: the sum across planes is then not compiled)."""
    if planes is not None:
        if radius[0] > 0:
            _box_sum_planes(src, 2 * radius[0] + 1, planes)
            src = planes
    for i in range(rows.shape[0]):
        _box_sum_first_axis(src[i], 2 * radius[1] + 1, rows[i])
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            _box_sum_row(rows[i, j], 2 * radius[2] + 1, out[i, j])


@_compiled(fastmath=True)
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
            _add_row(w, weight_sum[i, j])
            for c in range(channels):
                _accumulate_row(w, padded[c, vz + i, vy + j, vx:vx + nx], acc[c, i, j])


@_compiled(fastmath=True)
def _max_into(weights, origin, running_max):
    """running_max[q] = max(running_max[q], weights[origin + q])."""
    oz, oy, ox = origin
    nz, ny, nx = running_max.shape
    for i in range(nz):
        for j in range(ny):
            w = weights[oz + i, oy + j, ox:ox + nx]
            m = running_max[i, j]
            for k in range(nx):
                m[k] = max(m[k], w[k])


@_compiled(fastmath=True)
def _add_into(weights, origin, total):
    """total[q] += weights[origin + q]."""
    oz, oy, ox = origin
    nz, ny, nx = total.shape
    for i in range(nz):
        for j in range(ny):
            _add_row(weights[oz + i, oy + j, ox:ox + nx], total[i, j])


@_compiled(fastmath=True)
def _scale_row(w, inv_norm, out):
    """out = w * inv_norm (a row of _scale_from and _propose_rows)."""
    for k in range(out.shape[0]):
        out[k] = w[k] * inv_norm[k]


@_compiled(fastmath=True)
def _scale_from(weights, origin, inv_norm, out):
    """out[q] = weights[origin + q] * inv_norm[q]."""
    oz, oy, ox = origin
    nz, ny, nx = out.shape
    for i in range(nz):
        for j in range(ny):
            _scale_row(weights[oz + i, oy + j, ox:ox + nx], inv_norm[i, j], out[i, j])


# Inlined: the Gaussian kernel (kernels/gaussian.py) makes a row with it per row
# and offset, where a call cost 8 % of its time on 512² grey.
@_compiled(fastmath=True, inline="always")
def _diff_row(padded, z, y, x0, shift, out):
    """out[k] = sum_c (padded[c, z, y, x0 + k] - padded[c, z + sz, y + sy, x0 + sx + k])**2."""
    sz, sy, sx = shift
    n = out.shape[0]
    a = padded[0, z, y, x0:x0 + n]
    b = padded[0, z + sz, y + sy, x0 + sx:x0 + sx + n]
    if padded.shape[0] == 3:
        # RGB in one pass (the usual colour image), not one pass per channel.
        a1 = padded[1, z, y, x0:x0 + n]
        b1 = padded[1, z + sz, y + sy, x0 + sx:x0 + sx + n]
        a2 = padded[2, z, y, x0:x0 + n]
        b2 = padded[2, z + sz, y + sy, x0 + sx:x0 + sx + n]
        for k in range(n):
            d0, d1, d2 = a[k] - b[k], a1[k] - b1[k], a2[k] - b2[k]
            out[k] = d0 * d0 + d1 * d1 + d2 * d2
        return
    for k in range(n):
        diff = a[k] - b[k]
        out[k] = diff * diff
    for c in range(1, padded.shape[0]):
        a = padded[c, z, y, x0:x0 + n]
        b = padded[c, z + sz, y + sy, x0 + sx:x0 + sx + n]
        for k in range(n):
            diff = a[k] - b[k]
            out[k] += diff * diff


@_compiled(fastmath=True)
def _add_squared_diffs(padded, z, y, x0, shift, total):
    """One channel: total[k] += the squared difference of padded[0, z, y, x0 + k]
    and padded[0, z + sz, y + sy, x0 + sx + k]."""
    sz, sy, sx = shift
    n = total.shape[0]
    a = padded[0, z, y, x0:x0 + n]
    b = padded[0, z + sz, y + sy, x0 + sx:x0 + sx + n]
    for k in range(n):
        d = a[k] - b[k]
        total[k] += d * d


@_compiled(fastmath=EXACT_ORDER)
def _slide(padded, z, y, y_old, x0, shift, column_sums):
    """One channel: row y enters the patch, row y_old leaves it, in one pass
    of two multiply-adds, column_sums += d**2 - d_old**2. The leaving row's
    differences are made again from the image rather than kept in a ring of
    rows: the image's rows are shared by the group's offsets and stay in L1,
    where a ring of rows per offset did not (4-9 % less time on grey 512²)."""
    sz, sy, sx = shift
    n = column_sums.shape[0]
    a = padded[0, z, y, x0:x0 + n]
    b = padded[0, z + sz, y + sy, x0 + sx:x0 + sx + n]
    a_old = padded[0, z, y_old, x0:x0 + n]
    b_old = padded[0, z + sz, y_old + sy, x0 + sx:x0 + sx + n]
    for k in range(n):
        d = a[k] - b[k]
        d_old = a_old[k] - b_old[k]
        column_sums[k] += d * d - d_old * d_old


@_compiled(fastmath=True, inline="always")
def _row_to_weights(column_sums, width, scaled_threshold, inv_scale, pairs, out):
    """out[k] = 2**-max(sum(column_sums[k:k + width]) * inv_scale - scaled_threshold, 0).

    For the usual patch widths the sum is written out, so that one vectorised
    pass reads the row (loads from L1 are cheap) and stores only the weights.
    Widths 9 and 11 first store the sums of neighbouring columns in the scratch
    row `pairs`, and then add 5 or 6 terms instead of 9 or 11: this keeps the
    cost of large patches close to that of small ones (measured: 11x11 patches
    took 1.33 times as long as 3x3 with the sums written out, 1.15-1.23 times
    with the pairs; for 5x5 and 7x7 the extra pass gains nothing).
    Other widths use shifted adds.
    """
    n = out.shape[0]
    c = column_sums
    p = pairs
    zero = inv_scale - inv_scale  # 0 in the working dtype
    if width == 9 or width == 11:
        for k in range(n + width - 2):
            p[k] = c[k] + c[k + 1]
    if width == 3:
        for k in range(n):
            total = c[k] + c[k + 1] + c[k + 2]
            out[k] = exp2_neg(max(total * inv_scale - scaled_threshold, zero))
    elif width == 5:
        for k in range(n):
            total = c[k] + c[k + 1] + c[k + 2] + c[k + 3] + c[k + 4]
            out[k] = exp2_neg(max(total * inv_scale - scaled_threshold, zero))
    elif width == 7:
        for k in range(n):
            total = c[k] + c[k + 1] + c[k + 2] + c[k + 3] + c[k + 4] + c[k + 5] + c[k + 6]
            out[k] = exp2_neg(max(total * inv_scale - scaled_threshold, zero))
    elif width == 9:
        for k in range(n):
            total = ((p[k] + p[k + 2]) + (p[k + 4] + p[k + 6])) + c[k + 8]
            out[k] = exp2_neg(max(total * inv_scale - scaled_threshold, zero))
    elif width == 11:
        for k in range(n):
            total = ((p[k] + p[k + 2]) + (p[k + 4] + p[k + 6])) + (p[k + 8] + c[k + 10])
            out[k] = exp2_neg(max(total * inv_scale - scaled_threshold, zero))
    else:
        _box_sum_row(column_sums, width, out)
        for k in range(n):
            out[k] = exp2_neg(max(out[k] * inv_scale - scaled_threshold, zero))


@_compiled(fastmath=True)
def _accumulate_row(weights, values, acc_row):
    """acc_row += weights * values (one row of one channel)."""
    for k in range(acc_row.shape[0]):
        acc_row[k] += weights[k] * values[k]


@_compiled(fastmath=True)
def _add_row(weights, weight_sum_row):
    for k in range(weight_sum_row.shape[0]):
        weight_sum_row[k] += weights[k]


@_compiled(fastmath=True)
def _plane_sums(padded, z0, y0, x0, offset, patch_radius, size, scratch):
    """3-D patches: the squared differences of the window's rows, summed over the
    patch's planes (running sums), as a (wz, ey, ex) view of `scratch`. Patches
    of one plane (pz = 0) need none: a (1, 1, 1) placeholder view."""
    pz, py, px = patch_radius
    if pz == 0:
        return scratch[:1].reshape((1, 1, 1))
    wz, wy, wx = size
    ey, ex = wy + 2 * py, wx + 2 * px
    planes = scratch[:wz * ey * ex].reshape((wz, ey, ex))
    # The squared differences of all planes, after the plane sums in the scratch.
    rest = scratch[wz * ey * ex:]
    diff = rest[:(wz + 2 * pz) * ey * ex].reshape((wz + 2 * pz, ey, ex))
    for i in range(wz + 2 * pz):
        for r in range(ey):
            _diff_row(padded, z0 + i, y0 + r, x0, offset, diff[i, r])
    _box_sum_planes(diff, 2 * pz + 1, planes)
    return planes


# Inlined, as _row_to_weights: they run once per row and offset, and as calls
# (with their arrays' slicing and reference counts) they took 10 % of the time
# on 512-wide images (the first run of the fused path compiles 1 s longer).
@_compiled(fastmath=True, inline="always")
def _stream_row(padded, z, y0, x0, offset, j, ring, column_sums, ex, planes, planar,
                multichannel):
    """Column sums (sums over the patch's rows of the squared differences) for
    row j of a window whose first patch row is y0, given those of row j - 1, in
    column_sums[:ex].

    One channel (`multichannel` None): the row leaving the patch is taken
    off and the one entering added (_slide), so the work per position is the
    same for every patch size. Several channels: the squared-difference rows
    in the patch are kept in `ring` (2 * py + 1 rows, of which the first ex
    columns are used; padded row y in slot y % height), the row leaving the
    patch giving its slot to the one entering. The code for several channels
    is not compiled for one (Numba prunes `is None` branches on a None
    argument), nor that for one with True.

    The running sums start afresh at every padded row that is a multiple of
    ROW_RESTART, and a window that starts between two such rows first runs
    from the one before it. So the sums of a row, rounding included, are the
    same whichever tile or piece of the image computes them (a piece whose
    first row is a multiple of ROW_RESTART in the whole image's rows): a strip
    gives the whole image's result bit for bit.

    With 3-D patches (`planar`) the rows are all in `planes` (already summed
    over the patch's planes, see _plane_sums) and the ring is not used; those
    sums start at the window's first row.
    """
    height = ring.shape[0]
    sums = column_sums[:ex]
    if planar:
        # The rows are all in `planes` already: no ring.
        if j == 0:
            sums[:] = 0
            for r in range(height):
                _add_row(planes[r], sums)
        else:
            entering, leaving = planes[j + height - 1], planes[j - 1]
            for k in range(ex):
                sums[k] += entering[k] - leaving[k]
        return
    y = y0 + j
    # (ring[i, :ex], not a view of ring[:, :ex]: rows of unknown stride do not vectorise.)
    if j == 0 or y % ROW_RESTART == 0:
        # Afresh from the row `first`, in row order wherever it starts. Several
        # channels: every row of the ring at the window's start, only the
        # entering one at a restart.
        first = y - y % ROW_RESTART
        if multichannel is not None:
            for r in range(first if j == 0 else y + height - 1, first + height):
                _diff_row(padded, z, r, x0, offset, ring[r % height, :ex])
        sums[:] = 0
        for r in range(first, first + height):
            if multichannel is None:
                _add_squared_diffs(padded, z, r, x0, offset, sums)
            else:
                _add_row(ring[r % height, :ex], sums)
        first += 1
    else:
        first = y
    # Slide to row y: row r - 1 leaves the patch, row r + height - 1 enters (and
    # with several channels takes its slot).
    for r in range(first, y + 1):
        if multichannel is None:
            _slide(padded, z, r + height - 1, r - 1, x0, offset, sums)
        else:
            slot = ring[(r - 1) % height, :ex]
            for k in range(ex):
                sums[k] -= slot[k]
            _diff_row(padded, z, r + height - 1, x0, offset, slot)
            for k in range(ex):
                sums[k] += slot[k]


@_compiled(inline="always")
def _plane_used(sides, plane, tz, first, stop):
    """Whether the pairs (p, p + t) with p in `plane` concern a reference in the
    planes [first, stop) on a side in `sides`: 1, the forward side (the reference
    is p, and gets v(p + t)); 2, the mirrored one (the reference is p + t); 3, both.
    An offset with one side serves the windows that follow motion, which differ
    between the frames before and after the reference's (see window_offsets)."""
    return ((sides & 1 != 0 and first <= plane < stop)
            or (sides & 2 != 0 and first <= plane + tz < stop))


@_compiled(fastmath=True)
def _offset_weights(padded, margin, lo, size, offset, patch_radius, scaled_threshold, inv_scale,
                    ring, column_sums, pairs, plane_scratch, weight_flat, multichannel, sides,
                    ref_planes):
    """Weights w(p, p + offset) for the positions p in the box [lo, lo + size),
    as a view of `weight_flat`. Positions are output coordinates; `margin`
    converts them to padded ones. Rows are streamed (see _stream_row).

    `sides` (see _plane_used): the planes that no side in it uses, with the
    references in the planes [ref_planes[0], ref_planes[1]), are left out."""
    pz, py, px = patch_radius
    wz, wy, wx = size
    ex = wx + 2 * px
    sums = column_sums[:ex]
    weights = weight_flat[:wz * wy * wx].reshape((wz, wy, wx))
    # Padded coordinates of the first patch element of the first position.
    z0, y0, x0 = lo[0] - pz + margin[0], lo[1] - py + margin[1], lo[2] - px + margin[2]
    planar = pz > 0
    if plane_scratch is None:  # 2-D patches: pruned at compile time, no plane sums compiled
        planes = weight_flat[:1].reshape((1, 1, 1))
    else:
        planes = _plane_sums(padded, z0, y0, x0, offset, patch_radius, size, plane_scratch)
    for i in range(wz):
        if not _plane_used(sides, lo[0] + i, offset[0], ref_planes[0], ref_planes[1]):
            continue
        for j in range(wy):
            _stream_row(padded, z0 + i, y0, x0, offset, j, ring, column_sums, ex,
                        planes[i if planar else 0], planar, multichannel)
            _row_to_weights(sums, 2 * px + 1, scaled_threshold, inv_scale, pairs, weights[i, j])
    return weights


@_compiled(fastmath=True, inline="always")
def _accumulate_four(weight_rows, w_at, padded, vz, vy, v_at, g, n, acc, weight_sum, i, j):
    """Row (i, j) of the tile += sum over the offsets g .. g + 3 of
    weight_rows[g, w_at[g] + k] * padded[c, vz, vy, v_at[g] + k], and the
    weights to weight_sum: each accumulator row is loaded and stored once.

    Inlined by Numba, like the other per-row helpers of the fused path: they
    run once per row, and as calls they cost a fifth of the time.
    """
    w0 = weight_rows[g, w_at[g]:w_at[g] + n]
    w1 = weight_rows[g + 1, w_at[g + 1]:w_at[g + 1] + n]
    w2 = weight_rows[g + 2, w_at[g + 2]:w_at[g + 2] + n]
    w3 = weight_rows[g + 3, w_at[g + 3]:w_at[g + 3] + n]
    total = weight_sum[i, j]
    for k in range(n):
        total[k] += (w0[k] + w1[k]) + (w2[k] + w3[k])
    for c in range(padded.shape[0]):
        a = acc[c, i, j]
        v0 = padded[c, vz, vy, v_at[g]:v_at[g] + n]
        v1 = padded[c, vz, vy, v_at[g + 1]:v_at[g + 1] + n]
        v2 = padded[c, vz, vy, v_at[g + 2]:v_at[g + 2] + n]
        v3 = padded[c, vz, vy, v_at[g + 3]:v_at[g + 3] + n]
        for k in range(n):
            a[k] += (w0[k] * v0[k] + w1[k] * v1[k]) + (w2[k] * v2[k] + w3[k] * v3[k])


@_compiled(fastmath=True, inline="always")
def _accumulate_one(weight_rows, w_at, padded, vz, vy, v_at, g, n, acc, weight_sum, i, j):
    """_accumulate_four for the single offset g."""
    w = weight_rows[g, w_at[g]:w_at[g] + n]
    _add_row(w, weight_sum[i, j])
    for c in range(padded.shape[0]):
        _accumulate_row(w, padded[c, vz, vy, v_at[g]:v_at[g] + n], acc[c, i, j])


@_compiled(fastmath=True, inline="always")
def _accumulate_group(weight_rows, w_at, padded, vz, vy, v_at, members, n, acc, weight_sum,
                      i, j):
    """_accumulate_four for any number of offsets: four at a time, then one by one."""
    g = 0
    while g + 4 <= members:
        _accumulate_four(weight_rows, w_at, padded, vz, vy, v_at, g, n, acc, weight_sum, i, j)
        g += 4
    while g < members:
        _accumulate_one(weight_rows, w_at, padded, vz, vy, v_at, g, n, acc, weight_sum, i, j)
        g += 1


@_compiled(fastmath=True)
def _fused_offsets(padded, guide, margin, offsets, sides, first, members, ref_start,
                   patch_radius, scaled_threshold, inv_scale, rings, column_sums, pairs,
                   weight_rows, plane_scratch, columns, start, stop, acc, weight_sum,
                   multichannel):
    """Pixel-wise NL-means with centre weight 1, for the offsets
    offsets[first:first + members], which share tz, ty and their sides: the
    tile [start, stop) gets w(p, p + t) v(p + t) at p (side 1) and w(p, p + t)
    v(p) at p + t (side 2), added to acc and weight_sum.

    The offsets' rows of weights are made in lockstep (each from its own column
    sums, see _stream_row) and used at once while they are in L1, so each row of
    the accumulators is loaded and stored once for the group instead of once per
    offset: with few arithmetic operations per load, loads and stores are what
    limits the accumulation. 3-D patches: one offset at a time. The weights
    compare patches of `guide`; the values are those of `padded`.
    """
    pz, py, px = patch_radius
    nx = stop[2] - start[2]
    tile_size = (stop[0] - start[0], stop[1] - start[1], nx)
    # Per offset: first padded column of its window's patches, its row lengths, and
    # where the tile's weights and values start, forward and mirrored.
    x0, wx, w_forward, v_forward, w_mirror, v_mirror = (
        columns[0], columns[1], columns[2], columns[3], columns[4], columns[5])
    for g in range(members):
        t, lo, size, _, _ = _offset_window(offsets, first + g, ref_start, tile_size)
        x0[g] = lo[2] - px + margin[2]
        wx[g] = size[2]
        w_forward[g] = start[2] - lo[2]
        v_forward[g] = start[2] + t[2] + margin[2]
        w_mirror[g] = start[2] - t[2] - lo[2]
        v_mirror[g] = start[2] - t[2] + margin[2]
    # Rows and planes are the same for every offset of the group.
    t, lo, size, _, _ = _offset_window(offsets, first, ref_start, tile_size)
    tz, ty = t[0], t[1]
    wz, wy = size[0], size[1]
    z0, y0 = lo[0] - pz + margin[0], lo[1] - py + margin[1]
    planar = pz > 0
    if plane_scratch is None:  # 2-D patches: pruned at compile time, no plane sums compiled
        planes = weight_rows[0, :1].reshape((1, 1, 1))
    else:
        planes = _plane_sums(guide, z0, y0, x0[0], t, patch_radius, size, plane_scratch)
    used = sides[first]
    for i in range(wz):
        if not _plane_used(used, lo[0] + i, tz, start[0], stop[0]):
            # Neither p nor p + t of this plane is in the tile on a side in use
            # (frames of which only some are output, as OpenCV's Multi; windows
            # that follow motion): its weights would go unused.
            continue
        plane = planes[i if planar else 0]
        for j in range(wy):
            for g in range(members):
                shift = (tz, ty, offsets[first + g, 2])
                ex = wx[g] + 2 * px
                _stream_row(guide, z0 + i, y0, x0[g], shift, j, rings[g], column_sums[g], ex,
                            plane, planar, multichannel)
                # Whole vectors: the weights past wx[g] go unused.
                whole = -(-wx[g] // _WHOLE_VECTORS) * _WHOLE_VECTORS
                _row_to_weights(column_sums[g, :whole + 2 * px], 2 * px + 1, scaled_threshold,
                                inv_scale, pairs, weight_rows[g, :whole])
            pz_, py_ = lo[0] + i, lo[1] + j  # this row's positions p (output coordinates)
            if used & 1 != 0 and start[0] <= pz_ < stop[0] and start[1] <= py_ < stop[1]:
                # p in the tile: w(p, p + t) v(p + t).
                _accumulate_group(weight_rows, w_forward, padded, pz_ + tz + margin[0],
                                  py_ + ty + margin[1], v_forward, members, nx, acc, weight_sum,
                                  pz_ - start[0], py_ - start[1])
            qz, qy = pz_ + tz, py_ + ty
            if used & 2 != 0 and start[0] <= qz < stop[0] and start[1] <= qy < stop[1]:
                # q = p + t in the tile: w(q - t, q) v(q - t).
                _accumulate_group(weight_rows, w_mirror, padded, pz_ + margin[0], py_ + margin[1],
                                  v_mirror, members, nx, acc, weight_sum, qz - start[0],
                                  qy - start[1])


@_compiled()
def _offset_window(offsets, n, ref_start, ref_size):
    """For the n-th half offset t and the reference positions [ref_start, + ref_size):
    the box of positions p whose pair (p, p + t) concerns them (origin, size), and
    where, in that box, w(p, p + t) (forward) and w(p, p - t) (mirror) of the first
    reference sit."""
    t = (offsets[n, 0], offsets[n, 1], offsets[n, 2])
    lo = (ref_start[0] - max(t[0], 0), ref_start[1] - max(t[1], 0), ref_start[2] - max(t[2], 0))
    size = (ref_size[0] + abs(t[0]), ref_size[1] + abs(t[1]), ref_size[2] + abs(t[2]))
    forward = (ref_start[0] - lo[0], ref_start[1] - lo[1], ref_start[2] - lo[2])
    mirror = (forward[0] - t[0], forward[1] - t[1], forward[2] - t[2])
    return t, lo, size, forward, mirror


@njit(cache=True, fastmath=True, nogil=True)
def _fused_tile(padded, guide, out, start, stop, patch_radius, search_radius, offsets, sides,
                reach, scaled_threshold, inv_scale, low, high, round_output, volume_patches,
                multichannel):
    """Plain NL-means (pixel-wise, centre weight 1) for the output tile [start,
    stop): the weights of each group of offsets are made and used at once
    (_fused_offsets). `offsets`, `sides` and `reach` as for _denoise_tile."""
    channels = padded.shape[0]
    padded, guide = _unowned(padded), _unowned(guide)  # the caller's: alive throughout
    offsets, sides = _unowned(offsets), _unowned(sides)
    search_radius = (search_radius[0] + reach[0], search_radius[1] + reach[1],
                     search_radius[2] + reach[2])
    margin = (search_radius[0] + patch_radius[0], search_radius[1] + patch_radius[1],
              search_radius[2] + patch_radius[2])
    nz, ny, nx = stop[0] - start[0], stop[1] - start[1], stop[2] - start[2]
    dtype = padded.dtype
    acc = np.zeros((channels, nz, ny, nx), dtype=dtype)
    weight_sum = np.zeros((nz, ny, nx), dtype=dtype)
    # A ring of rows (several channels), a row of column sums and a row of weights
    # per offset of a group.
    wz_max, wy_max, wx_max = nz + search_radius[0], ny + search_radius[1], nx + search_radius[2]
    pz, py, px = patch_radius
    row = wx_max + 2 * px
    group = 1 if pz > 0 else _GROUP
    rings = np.empty((group, 2 * py + 1, row), dtype=dtype)
    # Room for whole vectors of weights (see _WHOLE_VECTORS); the column sums
    # past a row's end, which make the unused weights, hold zeros or sums of an
    # earlier row: finite.
    row_room = row + _WHOLE_VECTORS
    column_sums = np.zeros((group, row_room), dtype=dtype)
    weight_rows = np.empty((group, row_room), dtype=dtype)
    pairs = np.empty(row_room, dtype=dtype)  # scratch of _row_to_weights
    columns = np.empty((6, group), dtype=np.int64)
    if volume_patches is None:
        plane_scratch = None
    else:
        plane_scratch = np.empty(_plane_scratch_size(wz_max, wy_max, row, patch_radius),
                                 dtype=dtype)
    # An int64 from the start: the literal 0 would compile a second _fused_offsets.
    n = offsets.shape[0] * 0
    while n < offsets.shape[0]:
        # Offsets of the same row (tz, ty) and sides, `group` at most, go together.
        members = 1
        while (members < group and n + members < offsets.shape[0]
               and offsets[n + members, 0] == offsets[n, 0]
               and offsets[n + members, 1] == offsets[n, 1]
               and sides[n + members] == sides[n]):
            members += 1
        _fused_offsets(padded, guide, margin, offsets, sides, n, members, start, patch_radius,
                       scaled_threshold, inv_scale, _unowned(rings), _unowned(column_sums),
                       _unowned(pairs), _unowned(weight_rows), plane_scratch,
                       _unowned(columns), start, stop, _unowned(acc), _unowned(weight_sum),
                       multichannel)
        n += members
    # The pixel itself, weight 1.
    centre = np.ones((nz, ny, nx), dtype=dtype)
    origin = (nz * 0, nz * 0, nz * 0)
    _accumulate(centre, origin, padded, (start[0] + margin[0], start[1] + margin[1],
                                         start[2] + margin[2]), acc, weight_sum)
    _write_tile(out, acc, weight_sum, padded, start, stop, margin, low, high, round_output)


@_compiled()
def _plane_scratch_size(wz_max, wy_max, row, patch_radius):
    """3-D patches: room for the plane sums and the squared differences of all planes."""
    pz, py = patch_radius[0], patch_radius[1]
    return ((2 * wz_max + 2 * pz) * (wy_max + 2 * py) * row if pz > 0 else 0) + 1


@_compiled(fastmath=True)
def _write_tile(out, acc, weight_sum, padded, start, stop, margin, low, high, round_output):
    """The tile's weighted means into `out`, channel-last (the layout of colour
    images in memory, so that the caller needs no transposing copy)."""
    channels = acc.shape[0]
    nz, ny, nx = stop[0] - start[0], stop[1] - start[1], stop[2] - start[2]
    for i in range(nz):
        for j in range(ny):
            row = out[start[0] + i, start[1] + j, start[2]:start[2] + nx]
            for c in range(channels):
                for k in range(nx):
                    total = weight_sum[i, j, k]
                    if total > 0:
                        value = acc[c, i, j, k] / total
                    else:
                        # Every weight underflowed (centre_max with a tiny h): keep the pixel.
                        value = padded[c, start[0] + i + margin[0], start[1] + j + margin[1],
                                       start[2] + k + margin[2]]
                    # A weighted mean cannot leave [low, high] (the input's range):
                    # clipping removes only rounding. Integer outputs are rounded here.
                    value = min(max(value, low), high)
                    row[k, c] = np.rint(value) if round_output else value


@_compiled(fastmath=True)
def _normalise(centre, norm):
    """norm = 1 / (sum of a reference's weights, its own included), for patch-wise
    aggregation (pass 2 multiplies by it for every offset)."""
    rz, ry, rx = norm.shape
    for i in range(rz):
        for j in range(ry):
            for k in range(rx):
                norm[i, j, k] += centre[i, j, k]
                if norm[i, j, k] <= 0:
                    # Every weight underflowed (centre_max, tiny h): keep the pixel.
                    centre[i, j, k] = 1
                    norm[i, j, k] = 1
                norm[i, j, k] = 1 / norm[i, j, k]


@_compiled(fastmath=True)
def _propose_rows(weights, at, norm, radius, padded, v_at, acc, weight_sum, ring, y_sums,
                  x_sums):
    """_propose for patch-wise aggregation within planes (radius[0] == 0), a row
    at a time, with the same sums in the same order: each reference row's
    weights scaled by 1 / C(p) into a `ring` of rows, their running sum down
    the rows (restarting as _box_sum_first_axis does) in `y_sums`, its sum
    along the row in `x_sums`, added to the tile's row at once. The whole-tile
    passes (_scale_from, _box_filter, _accumulate) each read and wrote a tile
    from the second-level cache: this took 9-12 % less time in the automatic
    mode's second pass and on frames."""
    oz, oy, ox = at
    vz, vy, vx = v_at
    channels, nz, ny, nx = acc.shape
    rx = norm.shape[2]
    width = 2 * radius[1] + 1
    slots = ring.shape[0]  # width + 1: the rows entering and leaving the sum
    for i in range(nz):
        for j in range(ny):
            if j % ROW_RESTART == 0:
                for r in range(j, j + width):
                    _scale_row(weights[oz + i, oy + r, ox:ox + rx], norm[i, r], ring[r % slots])
                for k in range(rx):
                    y_sums[k] = ring[j % slots, k]
                for a in range(1, width):
                    entering = ring[(j + a) % slots]
                    for k in range(rx):
                        y_sums[k] += entering[k]
            else:
                r = j + width - 1
                _scale_row(weights[oz + i, oy + r, ox:ox + rx], norm[i, r], ring[r % slots])
                entering, leaving = ring[r % slots], ring[(j - 1) % slots]
                for k in range(rx):
                    y_sums[k] = y_sums[k] + entering[k] - leaving[k]
            _box_sum_row(y_sums, 2 * radius[2] + 1, x_sums)
            _add_row(x_sums, weight_sum[i, j])
            for c in range(channels):
                _accumulate_row(x_sums, padded[c, vz + i, vy + j, vx:vx + nx], acc[c, i, j])


@_compiled(fastmath=True)
def _propose(weights, at, norm, aggregation_radius, ref_weights, planes, rows, tile_weights,
             row_ring, y_sums, x_sums, padded, v_at, acc, weight_sum):
    """Add to the tile's sums the values padded[v_at + q] with the weights at
    weights[at + q]: pixel-wise, as they are; patch-wise, each reference p
    proposes v(p + t + k) to p + k with weight w(p, p + t) / C(p), so pixel q
    gets the box sum over the patch of those weights: within planes a row at a
    time (_propose_rows, scratch row_ring, y_sums, x_sums), across planes with
    whole-tile passes (scratch ref_weights, planes, rows, tile_weights)."""
    if aggregation_radius[0] == 0 and (aggregation_radius[1] > 0 or aggregation_radius[2] > 0):
        _propose_rows(weights, at, norm, aggregation_radius, padded, v_at, acc, weight_sum,
                      row_ring, y_sums, x_sums)
    elif aggregation_radius[0] > 0:
        _scale_from(weights, at, norm, ref_weights)
        _box_filter(ref_weights, aggregation_radius, planes, rows, tile_weights)
        zero = at[0] * 0  # int64s: a literal (0, 0, 0) compiles again
        _accumulate(tile_weights, (zero, zero, zero), padded, v_at, acc, weight_sum)
    else:
        _accumulate(weights, at, padded, v_at, acc, weight_sum)


@njit(cache=True, fastmath=True, nogil=True)
def _denoise_tile(padded, guide, out, start, stop, patch_radius, search_radius,
                  aggregation_radius, centre_max, offsets, sides, reach, scaled_threshold,
                  inv_scale, low, high, round_output, volume_patches, multichannel):
    """NL-means for the output tile [start, stop) (output coordinates), with a
    tile of weights per offset: the weights compare patches of `guide`, the
    means average pixels of `padded`. (The plain pixel-wise case with centre
    weight 1 has its own, faster path: _fused_tile.)

    aggregation_radius 0: pixel-wise, each pixel is the weighted mean of its
    candidates. aggregation_radius = patch radius: patch-wise, each reference
    patch's normalised estimate (the weighted mean of its candidates' patches)
    is proposed to every pixel it covers, and each pixel averages the proposals.
    centre_max: the reference's own weight is the largest of its other weights
    instead of 1.

    `offsets` are the tile's half offsets, each with its `sides` (see
    _plane_used); `reach`, how far beyond the search radius an offset may reach
    (windows that follow motion), is part of the margin.
    """
    channels = padded.shape[0]
    padded, guide = _unowned(padded), _unowned(guide)  # the caller's: alive throughout
    offsets, sides = _unowned(offsets), _unowned(sides)
    sz, sy, sx = search_radius[0] + reach[0], search_radius[1] + reach[1], \
        search_radius[2] + reach[2]
    az, ay, ax = aggregation_radius
    # Offset between output and padded coordinates on each axis.
    margin = (sz + patch_radius[0] + az, sy + patch_radius[1] + ay, sx + patch_radius[2] + ax)
    nz, ny, nx = stop[0] - start[0], stop[1] - start[1], stop[2] - start[2]
    dtype = padded.dtype
    aggregating = az > 0 or ay > 0 or ax > 0
    # Reference positions whose patch covers the tile: the tile widened by a.
    rz, ry, rx = nz + 2 * az, ny + 2 * ay, nx + 2 * ax
    ref_start = (start[0] - az, start[1] - ay, start[2] - ax)

    acc = np.zeros((channels, nz, ny, nx), dtype=dtype)
    weight_sum = np.zeros((nz, ny, nx), dtype=dtype)

    # Scratch buffers large enough for any offset.
    wz_max, wy_max, wx_max = nz + sz + 2 * az, ny + sy + 2 * ay, nx + sx + 2 * ax
    pz, py, px = patch_radius
    row = wx_max + 2 * px
    ring = np.empty((2 * py + 1, row), dtype=dtype)
    column_sums = np.empty(row, dtype=dtype)
    pairs = np.empty(row, dtype=dtype)  # scratch of _row_to_weights
    if volume_patches is None:
        plane_scratch = None
    else:
        plane_scratch = np.empty(_plane_scratch_size(wz_max, wy_max, row, patch_radius),
                                 dtype=dtype)
    weight_flat = np.empty(wz_max * wy_max * wx_max, dtype=dtype)

    # Each reference's own weight, and (patch-wise) the sum of all its weights.
    centre = np.ones((rz, ry, rx), dtype=dtype)
    norm = np.zeros((rz, ry, rx) if aggregating else (1, 1, 1), dtype=dtype)
    if centre_max:
        centre[:] = 0

    # The whole-tile proposals' scratch: patch-wise across planes only.
    tiled = aggregating and az > 0
    ref_weights = np.empty((rz, ry, rx) if tiled else (1, 1, 1), dtype=dtype)
    # Only a 3-D box filter sums across planes (see _box_filter).
    if volume_patches is None:
        planes = None
    else:
        planes = np.empty((nz, ry, rx) if az > 0 else (1, 1, 1), dtype=dtype)
    rows = np.empty((nz, ny, rx) if tiled else (1, 1, 1), dtype=dtype)
    tile_weights = np.empty((nz, ny, nx) if tiled else (1, 1, 1), dtype=dtype)

    # The row-wise proposals' scratch: patch-wise within planes.
    rowwise = aggregating and az == 0
    row_ring = np.empty((2 * ay + 2, rx) if rowwise else (1, 1), dtype=dtype)
    y_sums = np.empty(rx if rowwise else 1, dtype=dtype)
    x_sums = np.empty(nx if rowwise else 1, dtype=dtype)
    # Two sweeps over the offsets: the first (only when something needs every
    # weight of a reference first) finds each reference's largest weight and
    # the sum of its weights, the second accumulates. One call site each for
    # the weights and the proposals: every call site of a compiled helper is
    # optimised again in this function, seconds of the first run.
    for sweep in range(0 if centre_max or aggregating else 1, 2):
        for n in range(offsets.shape[0]):
            t, lo, size, forward, mirror = _offset_window(offsets, n, ref_start, (rz, ry, rx))
            weights = _offset_weights(guide, margin, lo, size, t, patch_radius,
                                      scaled_threshold, inv_scale, _unowned(ring),
                                      _unowned(column_sums), _unowned(pairs), plane_scratch,
                                      _unowned(weight_flat), multichannel, sides[n],
                                      (ref_start[0], ref_start[0] + rz))
            for side in range(2):
                if sides[n] & (1 << side) == 0:
                    continue
                at = forward if side == 0 else mirror
                if sweep == 0:
                    if centre_max:
                        _max_into(weights, at, centre)
                    if aggregating:
                        _add_into(weights, at, norm)
                else:
                    # Pixel q of the tile receives v(q + t) (forward) and v(q - t).
                    sign = 1 - 2 * side
                    v_at = (start[0] + sign * t[0] + margin[0], start[1] + sign * t[1] + margin[1],
                            start[2] + sign * t[2] + margin[2])
                    _propose(weights, at, _unowned(norm), aggregation_radius,
                             _unowned(ref_weights), planes, _unowned(rows),
                             _unowned(tile_weights), _unowned(row_ring), _unowned(y_sums),
                             _unowned(x_sums), padded, v_at, _unowned(acc),
                             _unowned(weight_sum))
        if sweep == 0 and aggregating:
            _normalise(centre, norm)

    # The reference's own pixel (or patch).
    v_centre = (start[0] + margin[0], start[1] + margin[1], start[2] + margin[2])
    _propose(centre, (nz * 0, nz * 0, nz * 0), norm, aggregation_radius, ref_weights, planes,
             rows, tile_weights, row_ring, y_sums, x_sums, padded, v_centre, acc, weight_sum)

    _write_tile(out, acc, weight_sum, padded, start, stop, margin, low, high, round_output)


def nlmeans_kernel(padded, guide, patch_radius, search_radius, aggregation_radius, centre_max,
                   threshold, inv_scale, tile_shape, low, high, round_output, tile_done=None,
                   positions=None):
    """NL-means of a mirrored, channel-first volume.

    Parameters
    ----------
    padded : (C, Z + 2 m_z, Y + 2 m_y, X + 2 m_x) float32 or float64, C-contiguous,
        mirrored by m_a = search_radius[a] + patch_radius[a] + aggregation_radius[a]
        (plus, along Y and X, the reach of windows that follow motion: see
        `positions` and :func:`motion_reach`).
        The values averaged.
    guide : (G, ...) array of padded's spatial shape and dtype
        The values whose patches are compared to make the weights: `padded`
        itself for NL-means, or a less noisy estimate of it (any number of
        channels G) for a second pass.
    patch_radius, search_radius, aggregation_radius : 3-tuples of int (z, y, x).
        aggregation_radius is 0 (pixel-wise) or the patch radius (patch-wise).
    centre_max : bool
        Give each reference its largest other weight instead of 1.
    threshold : float
        Subtracted from the patch sum of squared differences before the exponential
        (2 sigma^2 times the number of summed terms). threshold * inv_scale must be
        finite.
    inv_scale : float
        log2(e) / (h^2 times the number of summed terms): the weights are computed
        as powers of 2, 2**(-d^2 log2(e) / h^2) = exp(-d^2 / h^2).
    tile_shape : 3-tuple of int
        Output tile processed by one thread at a time.
    low, high : float
        The result is clipped to [low, high] (the input's range).
    round_output : bool
        Round the result to integers (for integer images).
    tile_done : callable, optional
        Called with the number of tiles after each tile, from the worker
        threads (progress within one image).
    positions : (Z + 2 m_z, 2) int64 array, optional
        Frames (2-D patches along Z): where each padded plane's content sits,
        (y, x), in a common frame of reference (the frames' motion, see
        :mod:`nlmeans.model.motion`). The window of a pixel in another plane
        then also covers, besides the positions around the pixel, those around
        where the content moved (see :func:`window_offsets`).

    Returns
    -------
    (Z, Y, X, C) array of the padded input's dtype (channel-last).

    Two compiled paths, each one tile function that releases the GIL: the
    plain pixel-wise filter with centre weight 1 (_fused_tile) and every other
    case (_denoise_tile). A run compiles only the one it needs (together they
    took twice as long to compile). The tiles are shared among threads by
    :func:`run_tiles`; their bounds, the offsets and the output are made here
    in Python: each compiled entry point (and each level of compiled calls)
    costs seconds of the first run, to optimise and emit again all the code
    it calls.
    """
    z_margin = search_radius[0] + patch_radius[0] + aggregation_radius[0]
    reach = (0, 0, 0) if positions is None else motion_reach(positions, search_radius[0],
                                                              z_margin)
    margin = [s + p + a + r for s, p, a, r in zip(search_radius, patch_radius,
                                                   aggregation_radius, reach)]
    shape = tuple(n - 2 * m for n, m in zip(padded.shape[1:], margin))
    out = np.empty(shape + (padded.shape[0],), dtype=padded.dtype)
    plane_offsets = [None] * shape[0] if positions is None else [
        window_offsets(search_radius, *plane_shifts(positions, z + margin[0], search_radius[0]))
        for z in range(shape[0])]
    tiles = list(itertools.product(_plane_ranges(shape[0], tile_shape[0], plane_offsets),
                                   range(0, shape[1], tile_shape[1]),
                                   range(0, shape[2], tile_shape[2])))
    entry, arguments = tile_call(padded, guide, out, patch_radius, search_radius,
                                 aggregation_radius, centre_max, threshold, inv_scale, low, high,
                                 round_output, reach)

    def run(tile):
        (z_start, z_stop), y, x = tiles[tile]
        start = (z_start, y, x)
        stop = (z_stop, min(y + tile_shape[1], shape[1]), min(x + tile_shape[2], shape[2]))
        entry(*arguments(start, stop, plane_offsets[z_start]))
        if tile_done is not None:
            tile_done(count)

    count = len(tiles)
    run_tiles(run, count, get_num_threads())
    return out


def _plane_ranges(planes, per_tile, plane_offsets):
    """The tiles' ranges of planes: `per_tile` planes, but a plane with its own
    offsets (motion) alone."""
    ranges, z = [], 0
    while z < planes:
        stop = min(z + per_tile, planes)
        own = [i for i in range(z, stop) if plane_offsets[i] is not None]
        if own:
            stop = own[0] + 1 if own[0] == z else own[0]
        ranges.append((z, stop))
        z = stop
    return ranges


def plane_shifts(positions, plane, temporal_radius):
    """For the padded `plane`: where its content went in each of the
    `temporal_radius` planes after it, and where that of each plane before it
    went in it, ((k, 2) int arrays, k = 1, 2, ...): forward, positions[plane +
    k] - positions[plane]; mirrored, positions[plane] - positions[plane - k]."""
    k = np.arange(1, temporal_radius + 1)
    return positions[plane + k] - positions[plane], positions[plane] - positions[plane - k]


def motion_reach(positions, temporal_radius, z_margin):
    """How far (z, y, x) beyond the search radius the windows that follow the
    motion of `positions` reach, over the output planes (those `z_margin`
    or more from the ends): the largest move, rounded up to a multiple of
    _WHOLE_VECTORS along X and of ROW_RESTART along Y, plus ROW_RESTART rows.
    A result must not depend on the moves of other planes (a stream's batch
    holds other planes than the whole sequence), and the margin changed the
    rounding of some sums: the rows' vectors fall where the padded columns put
    them, and the running sums of a window's first rows start at the padded
    row of their restart, up to ROW_RESTART - 1 rows before it, which a
    narrow margin leaves outside the padded rows (added there, and taken off
    again, from rows elsewhere in the array). With these margins they lie
    within it, the image mirrored, whatever the moves."""
    reach = np.zeros(2, np.int64)
    for plane in range(z_margin, len(positions) - z_margin):
        for shifts in plane_shifts(positions, plane, temporal_radius):
            if len(shifts):
                reach = np.maximum(reach, np.abs(shifts).max(axis=0))
    return (0, int(-(-reach[0] // ROW_RESTART) * ROW_RESTART) + ROW_RESTART,
            int(-(-reach[1] // _WHOLE_VECTORS) * _WHOLE_VECTORS))


def window_offsets(search_radius, forward, mirrored):
    """A plane's half offsets and their sides (see _plane_used), for windows
    that follow motion: in the k-th plane after the reference's, the usual
    search window around the reference and a smaller one, of half its radius
    (rounded up), around where the reference's content moved, forward[k - 1]
    (y, x); in the k-th before, around where it came from, -mirrored[k - 1].
    The usual half offsets (both sides) come first, in their order, then each
    plane's moved window less what the usual one covers: with one side, or
    both where the two moves are equal. None where the moved windows add
    nothing: the plane takes the usual offsets.

    Why both windows: on the dev clip (a pan of 19 pixels a frame, and cyclists
    that move otherwise) the moved window alone lost 0.5 to 0.9 dB against none,
    the union of the full windows gained 0.2 to 0.8 dB for twice the time, and
    a moved window of half the radius gained 0.4 to 0.8 for 1.3 to 1.45 times
    (the prediction is good to a pixel or two; a wider one adds poor matches)."""
    _, ry, rx = search_radius
    my, mx = moved_radius(ry), moved_radius(rx)
    grid = np.stack(np.meshgrid(np.arange(-my, my + 1), np.arange(-mx, mx + 1),
                                indexing="ij"), axis=-1).reshape(-1, 2)
    offsets, sides = [], []
    for k in range(1, search_radius[0] + 1):
        moves = [(forward[k - 1], 1), (mirrored[k - 1], 2)]
        if np.array_equal(forward[k - 1], mirrored[k - 1]):
            moves = [(forward[k - 1], 3)]
        for move, side in moves:
            moved = grid + move
            extra = moved[(np.abs(moved[:, 0]) > ry) | (np.abs(moved[:, 1]) > rx)]
            if len(extra):
                offsets.append(np.column_stack([np.full(len(extra), k), extra]))
                sides.append(np.full(len(extra), side, np.int64))
    if not offsets:
        return None
    base = half_offsets(search_radius)
    return (np.ascontiguousarray(np.concatenate([base] + offsets), dtype=np.int64),
            np.concatenate([np.full(len(base), 3, np.int64)] + sides))


def tile_call(padded, guide, out, patch_radius, search_radius, aggregation_radius, centre_max,
              threshold, inv_scale, low, high, round_output, reach=(0, 0, 0)):
    """The compiled tile function that these options need, and a function of a
    tile's (start, stop) and its (offsets, sides) (None: the usual half
    offsets) that gives its arguments (see nlmeans_kernel)."""
    offsets = half_offsets(search_radius)
    usual = offsets, np.full(len(offsets), 3, np.int64)
    reach = tuple(int(r) for r in reach)
    # The weights are 2**-max(d * inv_scale - threshold * inv_scale, 0): one
    # multiply-add per weight (the caller keeps threshold * inv_scale finite).
    scaled_threshold = threshold * inv_scale
    # None for patches of one plane: the 3-D plane sums are then left out of the
    # compiled code (Numba prunes `is None` branches on a None argument), 3 s of
    # the first run's compile.
    volume_patches = None if patch_radius[0] == 0 else True
    # None for a guide of one channel: only its difference rows are compiled
    # (a tenth of the code), and only the others' for several channels.
    multichannel = None if guide.shape[0] == 1 else True
    if kernel_for(aggregation_radius, centre_max) is _fused_tile:
        return _fused_tile, lambda start, stop, own=None: (
            padded, guide, out, start, stop, patch_radius, search_radius, *(own or usual),
            reach, scaled_threshold, inv_scale, low, high, round_output, volume_patches,
            multichannel)
    return _denoise_tile, lambda start, stop, own=None: (
        padded, guide, out, start, stop, patch_radius, search_radius, aggregation_radius,
        centre_max, *(own or usual), reach, scaled_threshold, inv_scale, low, high,
        round_output, volume_patches, multichannel)


def run_tiles(run, count, threads):
    """run(tile) for every tile, on `threads` threads (this one among them).

    The compiled tile functions release the GIL, so the threads run in
    parallel; each takes the next tile when it is done with one. The kernel
    is not a Numba parallel (prange) function: that compiled for twice as long
    (8 s of the 22 s of the automatic mode's first run), and Ctrl-C is answered
    here between two tiles instead of after the whole image.
    """
    tiles = itertools.count()  # next() is atomic under the GIL
    stop = threading.Event()
    failures = []

    def work():
        try:
            for tile in tiles:
                if tile >= count or stop.is_set():
                    return
                run(tile)
        except BaseException as exc:  # noqa: B036 - handed to the calling thread
            failures.append(exc)
            stop.set()

    helpers = [threading.Thread(target=work, daemon=True)
               for _ in range(min(threads, count) - 1)]
    for helper in helpers:
        helper.start()
    try:
        work()
    finally:
        stop.set()  # Ctrl-C here: the helpers stop after their current tile
        for helper in helpers:
            helper.join()
    if failures:
        raise failures[0]


def kernel_for(aggregation_radius, centre_max):
    """The compiled tile function that nlmeans_kernel runs for these options."""
    return _fused_tile if not any(aggregation_radius) and not centre_max else _denoise_tile


def will_compile(dispatcher, arguments=None):
    """Whether calling `dispatcher` with `arguments` compiles it: this process
    has not compiled or loaded it for their types, and Numba's cache index holds
    no machine code for them (Numba's own lookup, through its private cache
    API; False where that API differs). Without `arguments`: whether nothing of
    it is loaded or cached, whatever the types."""
    if arguments is None:
        return _nothing_cached(dispatcher)
    signature = tuple(dispatcher.typeof_pyval(a) for a in arguments)
    if signature in dispatcher.overloads:
        return False
    try:
        cache = dispatcher._cache
        key = cache._index_key(signature, dispatcher.targetctx.codegen())
        return key not in cache._cache_file._load_index()
    except Exception:  # noqa: BLE001 - another Numba's internals: say nothing
        return False


def _nothing_cached(dispatcher):
    if dispatcher.overloads:
        return False
    try:
        folder = dispatcher._cache.cache_path  # Numba's own cache folder for this file
    except AttributeError:
        return False
    pattern = f"*.{dispatcher.py_func.__name__}-*.nbi"
    return not glob.glob(os.path.join(glob.escape(folder), pattern))
