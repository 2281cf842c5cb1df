"""The GPU backend: one NL-means pass on an NVIDIA GPU through numba.cuda.

The same pass as :func:`nlmeans.backends.cpu.numba_pass` (the exact formula, no
approximation), for 2-D images with any number of channels, in float32.
Each CUDA block owns a 16 x 16 tile of the output and loops over the search
offsets t; for each t its threads, together,

1. square the differences of the guide at p + k and p + k + t over the tile and
   the patch around it, in shared memory,
2. box-sum them over the patch, separably (columns, then rows),
3. turn the sums into weights exp(-max(d - threshold, 0) * scale),
4. accumulate w * v(x + t) and w for the tile's pixels in registers.

Patch-wise aggregation needs each reference patch's weight sum C(p) before its
estimate can be averaged into the pixels it covers, so it takes two sweeps:
the first finds C(p) and the largest weight of every reference p (on the image
grown by the patch radius), the second box-filters the normalised weights
w(p, t) / C(p) over the patch and accumulates them times v(q + t).

numba.cuda is imported only when this backend runs; with
``NUMBA_ENABLE_CUDASIM=1`` the kernels run on Numba's CUDA simulator (slowly,
on the CPU), which is how the tests check them without a GPU.
"""

import math

import numpy as np

from nlmeans.backends.scales import kernel_scales

TILE = 16
# Largest patch radius and search radius the shared buffers are sized for.
MAX_PATCH_RADIUS = 5
MAX_CHANNELS = 8
# Buffer width: the tile, grown by the aggregation radius and the patch radius.
_SPAN = TILE + 4 * MAX_PATCH_RADIUS
_kernels = None
_SMALLEST_NORMAL = np.float32(np.finfo(np.float32).tiny)
cuda = None  # numba.cuda, once imported; a global so that the simulator can stand in


def cuda_available():
    """Whether a CUDA GPU (or the simulator) can run the backend."""
    try:
        cuda = import_cuda()
        return bool(cuda.is_available())
    except Exception:  # no numba-cuda, no driver, no device: all mean "no"
        return False


def import_cuda():
    """numba.cuda, imported once numpy has the names it expects.

    numba-cuda still calls ``np.row_stack``, which numpy 2.5 removed; it is the
    same function as ``np.vstack``.
    """
    global cuda
    if cuda is None:
        if not hasattr(np, "row_stack"):
            np.row_stack = np.vstack
        from numba import cuda as module  # optional: the [cuda] extra

        cuda = module
    return cuda


def unsupported(settings):
    """Why the CUDA backend cannot run `settings`, or None if it can."""
    if settings.method != "nlmeans":
        return f"the CUDA backend runs NL-means; method {settings.method!r} runs on the CPU"
    if settings.dtype != "float32":
        return "the CUDA backend computes in float32"
    if settings.n_spatial != 2:
        return "the CUDA backend denoises 2-D images; volumes run on the CPU"
    if settings.channels > MAX_CHANNELS:
        return f"the CUDA backend takes up to {MAX_CHANNELS} channels"
    for step in settings.passes:
        if len(set(step.patch_radius)) != 1 or len(set(step.search_radius)) != 1:
            return "the CUDA backend needs the same radius along both axes"
        if step.patch_radius[0] > MAX_PATCH_RADIUS:
            return f"the CUDA backend takes patch radii up to {MAX_PATCH_RADIUS}"
    return None


def cuda_pass(values, guide, step, dtype, bounds, rounded):
    """One pass on the GPU; the arguments and result are those of
    :func:`nlmeans.backends.cpu.numba_pass` (checked beforehand by :func:`unsupported`)."""
    values_d, guide_d = to_device(values, guide, step)
    out = run_on_device(values_d, guide_d, step).copy_to_host()
    out = np.clip(out[:, None], *bounds)
    return np.rint(out, out=out) if rounded else out


def to_device(values, guide, step):
    """The (C, 1, Y, X) values and guide (or None), mirrored by the pass's margin,
    as float32 device arrays (the guide is the values when None)."""
    import_cuda()
    patch, search = step.patch_radius[0], step.search_radius[0]
    margin = search + patch + (patch if step.aggregation == "patch" else 0)
    pad = [(0, 0), (margin, margin), (margin, margin)]

    def mirrored(volume):
        return cuda.to_device(np.ascontiguousarray(np.pad(volume[:, 0], pad, mode="reflect"),
                                                   dtype=np.float32))

    values_d = mirrored(values)
    return values_d, values_d if guide is None else mirrored(guide)


def run_on_device(values_d, guide_d, step):
    """Launch the pass's kernels on mirrored device arrays; returns the (C, Y, X)
    device result (the launches are asynchronous)."""

    kernels = _compiled()
    patch, search = step.patch_radius[0], step.search_radius[0]
    aggregation = patch if step.aggregation == "patch" else 0
    margin = search + patch + aggregation
    terms = guide_d.shape[0] * (2 * patch + 1) ** 2
    threshold, inv_scale2 = kernel_scales(step.h, step.sigma, terms, np.dtype(np.float32))
    inv_scale = np.float32(inv_scale2 / 1.4426950408889634)  # exp2 scale -> exp scale
    channels = values_d.shape[0]
    height, width = values_d.shape[1] - 2 * margin, values_d.shape[2] - 2 * margin
    centre_max = step.centre_weight == "max"
    out_d = cuda.device_array((channels, height, width), dtype=np.float32)
    if aggregation == 0:
        grid = (-(-width // TILE), -(-height // TILE))
        kernels.pixel_wise[grid, (TILE, TILE)](guide_d, values_d, out_d, patch, search, margin,
                                               threshold, inv_scale, centre_max)
        return out_d
    grown = (height + 2 * aggregation, width + 2 * aggregation)
    sums_d = cuda.device_array(grown, dtype=np.float32)
    centres_d = cuda.device_array(grown, dtype=np.float32)
    grid = (-(-grown[1] // TILE), -(-grown[0] // TILE))
    kernels.weight_sums[grid, (TILE, TILE)](guide_d, sums_d, centres_d, patch, search, margin,
                                            aggregation, threshold, inv_scale, centre_max)
    grid = (-(-width // TILE), -(-height // TILE))
    kernels.patch_wise[grid, (TILE, TILE)](guide_d, values_d, sums_d, centres_d, out_d, patch,
                                           search, margin, aggregation, threshold, inv_scale)
    return out_d


def _compiled():
    """The kernels, compiled on first use (numba.cuda is imported only then)."""
    global _kernels
    if _kernels is None:
        _kernels = _make_kernels()
    return _kernels


def _make_kernels():
    from numba import float32  # deferred with numba.cuda, above

    @cuda.jit(device=True)
    def box_columns(src, out, rows, cols, radius):
        """out[i, j] = sum of src[i + k, j], k < 2 * radius + 1, for i < rows, j < cols
        (the block's threads share the entries)."""
        index = cuda.threadIdx.y * TILE + cuda.threadIdx.x
        while index < rows * cols:
            i, j = index // cols, index % cols
            total = float32(0.0)
            for k in range(2 * radius + 1):
                total += src[i + k, j]
            out[i, j] = total
            index += TILE * TILE

    @cuda.jit(device=True)
    def box_rows(src, out, rows, cols, radius):
        """out[i, j] = sum of src[i, j + k], k < 2 * radius + 1, for i < rows, j < cols."""
        index = cuda.threadIdx.y * TILE + cuda.threadIdx.x
        while index < rows * cols:
            i, j = index // cols, index % cols
            total = float32(0.0)
            for k in range(2 * radius + 1):
                total += src[i, j + k]
            out[i, j] = total
            index += TILE * TILE

    @cuda.jit(device=True)
    def patch_distances(guide, y0, x0, dy, dx, patch, reach, diff, columns, dist):
        """dist[i, j] = patch distance between (y0 + i, x0 + j) and its shift by
        (dy, dx), for i, j < TILE + 2 * reach (padded coordinates of the guide;
        y0, x0 is the corner of the region, reach the radius it grows by)."""
        ty, tx = cuda.threadIdx.y, cuda.threadIdx.x
        side = TILE + 2 * reach
        span = side + 2 * patch
        channels, rows, cols = guide.shape
        # 1. squared differences over the region grown by the patch radius;
        # a tile that overhangs the image reads clamped positions, whose
        # results only reach outputs outside the image
        index = ty * TILE + tx
        while index < span * span:
            i, j = index // span, index % span
            y, x = y0 - patch + i, x0 - patch + j
            ya, xa = min(y, rows - 1), min(x, cols - 1)
            yb, xb = min(max(y + dy, 0), rows - 1), min(max(x + dx, 0), cols - 1)
            total = float32(0.0)
            for c in range(channels):
                d = guide[c, ya, xa] - guide[c, yb, xb]
                total += d * d
            diff[i, j] = total
            index += TILE * TILE
        cuda.syncthreads()
        # 2. and 3. column sums over the patch height, then row sums over its width
        box_columns(diff, columns, side, span, patch)
        cuda.syncthreads()
        box_rows(columns, dist, side, side, patch)
        cuda.syncthreads()

    @cuda.jit(device=True)
    def weight(distance, threshold, inv_scale):
        excess = distance - threshold
        if excess <= 0:
            return float32(1.0)
        w = math.exp(-excess * inv_scale)
        # Below the smallest normal float32 the CPU kernel flushes weights to 0
        # (and a pixel whose every weight is 0 keeps its value): the same here,
        # or a pixel whose best match is ~1e-40 would average where the CPU keeps it.
        return w if w >= _SMALLEST_NORMAL else float32(0.0)

    @cuda.jit
    def pixel_wise(guide, values, out, patch, search, margin, threshold, inv_scale, centre_max):
        diff = cuda.shared.array((_SPAN, _SPAN), dtype=float32)
        columns = cuda.shared.array((_SPAN, _SPAN), dtype=float32)
        dist = cuda.shared.array((_SPAN, _SPAN), dtype=float32)
        acc = cuda.local.array(MAX_CHANNELS, dtype=float32)
        channels, height, width = out.shape
        ty, tx = cuda.threadIdx.y, cuda.threadIdx.x
        y, x = cuda.blockIdx.y * TILE + ty, cuda.blockIdx.x * TILE + tx
        y0, x0 = cuda.blockIdx.y * TILE + margin, cuda.blockIdx.x * TILE + margin
        for c in range(channels):
            acc[c] = 0.0
        total, largest = float32(0.0), float32(0.0)
        for dy in range(-search, search + 1):
            for dx in range(-search, search + 1):
                if dy == 0 and dx == 0:
                    continue
                patch_distances(guide, y0, x0, dy, dx, patch, 0, diff, columns, dist)
                w = weight(dist[ty, tx], threshold, inv_scale)
                if y < height and x < width:
                    for c in range(channels):
                        acc[c] += w * values[c, y + margin + dy, x + margin + dx]
                    total += w
                    largest = max(largest, w)
                cuda.syncthreads()  # dist is rewritten by the next offset
        if y < height and x < width:
            centre = largest if centre_max and search > 0 else float32(1.0)
            total += centre
            for c in range(channels):
                pixel = values[c, y + margin, x + margin]
                # Every weight underflowed (largest-weight centre, tiny h): keep the pixel.
                out[c, y, x] = (acc[c] + centre * pixel) / total if total > 0 else pixel

    @cuda.jit
    def weight_sums(guide, sums, centres, patch, search, margin, aggregation, threshold,
                    inv_scale, centre_max):
        """C(p) and the centre weight of every reference p of the image grown by
        `aggregation`."""
        diff = cuda.shared.array((_SPAN, _SPAN), dtype=float32)
        columns = cuda.shared.array((_SPAN, _SPAN), dtype=float32)
        dist = cuda.shared.array((_SPAN, _SPAN), dtype=float32)
        height, width = sums.shape
        ty, tx = cuda.threadIdx.y, cuda.threadIdx.x
        y, x = cuda.blockIdx.y * TILE + ty, cuda.blockIdx.x * TILE + tx
        # Reference (y, x) of the grown grid sits at padded (y + margin - aggregation, ...).
        y0 = cuda.blockIdx.y * TILE + margin - aggregation
        x0 = cuda.blockIdx.x * TILE + margin - aggregation
        total, largest = float32(0.0), float32(0.0)
        for dy in range(-search, search + 1):
            for dx in range(-search, search + 1):
                if dy == 0 and dx == 0:
                    continue
                patch_distances(guide, y0, x0, dy, dx, patch, 0, diff, columns, dist)
                w = weight(dist[ty, tx], threshold, inv_scale)
                total += w
                largest = max(largest, w)
                cuda.syncthreads()
        if y < height and x < width:
            centre = largest if centre_max and search > 0 else float32(1.0)
            if total + centre <= 0:  # every weight underflowed: the patch keeps itself
                centre = float32(1.0)
            sums[y, x] = total + centre
            centres[y, x] = centre

    @cuda.jit
    def patch_wise(guide, values, sums, centres, out, patch, search, margin, aggregation,
                   threshold, inv_scale):
        """u(q) = mean over the patches p covering q of sum_t w(p, t) v(q + t) / C(p)."""
        diff = cuda.shared.array((_SPAN, _SPAN), dtype=float32)
        columns = cuda.shared.array((_SPAN, _SPAN), dtype=float32)
        dist = cuda.shared.array((_SPAN, _SPAN), dtype=float32)
        acc = cuda.local.array(MAX_CHANNELS, dtype=float32)
        channels, height, width = out.shape
        ty, tx = cuda.threadIdx.y, cuda.threadIdx.x
        y, x = cuda.blockIdx.y * TILE + ty, cuda.blockIdx.x * TILE + tx
        by, bx = cuda.blockIdx.y * TILE, cuda.blockIdx.x * TILE
        side = TILE + 2 * aggregation
        for c in range(channels):
            acc[c] = 0.0
        weight_total = float32(0.0)
        for dy in range(-search, search + 1):
            for dx in range(-search, search + 1):
                centre = dy == 0 and dx == 0
                if not centre:
                    # Distances of the references p of the tile grown by the
                    # aggregation radius (grown-grid row by + i sits at padded
                    # by + i + margin - aggregation).
                    patch_distances(guide, by + margin - aggregation, bx + margin - aggregation,
                                    dy, dx, patch, aggregation, diff, columns, dist)
                # w(p, t) / C(p) into diff, over the grown tile
                index = ty * TILE + tx
                while index < side * side:
                    i, j = index // side, index % side
                    gy, gx = min(by + i, sums.shape[0] - 1), min(bx + j, sums.shape[1] - 1)
                    if centre:
                        w = centres[gy, gx]
                    else:
                        w = weight(dist[i, j], threshold, inv_scale)
                    diff[i, j] = w / sums[gy, gx]
                    index += TILE * TILE
                cuda.syncthreads()
                # box-sum over the aggregation patch: columns, then rows
                box_columns(diff, columns, TILE, side, aggregation)
                cuda.syncthreads()
                if y < height and x < width:
                    total = float32(0.0)
                    for k in range(2 * aggregation + 1):
                        total += columns[ty, tx + k]
                    for c in range(channels):
                        acc[c] += total * values[c, y + margin + dy, x + margin + dx]
                    weight_total += total
                cuda.syncthreads()
        if y < height and x < width:
            # The normalised weights of each patch sum to 1: the total is the
            # number of patches covering q, up to rounding.
            for c in range(channels):
                out[c, y, x] = acc[c] / weight_total

    class Kernels:
        pass

    kernels = Kernels()
    kernels.pixel_wise = pixel_wise
    kernels.weight_sums = weight_sums
    kernels.patch_wise = patch_wise
    return kernels
