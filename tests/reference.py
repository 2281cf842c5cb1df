"""Slow, obviously-correct NL-means in float64, written straight from the formula.

Used only by the tests, on images of a few hundred pixels. It shares nothing with
the package: the mirroring is its own index arithmetic, and every weight is
computed from scratch with numpy's exp.
"""

import itertools

import numpy as np


def mirror_index(i, n):
    """Index of position i in an axis of length n mirrored like NumPy's 'reflect' mode."""
    if n == 1:
        return 0
    period = 2 * n - 2
    i %= period
    return i if i < n else period - i


def flat_plane(i, n, m):
    """Position i of an axis of n planes padded by m for patches flat along it:
    k planes before the first is plane m + 1 - k, k after the last is plane
    n - 2 - m + k, kept within the axis."""
    if i < 0:
        return min(m + 1 - (-i), n - 1)
    if i >= n:
        return max(n - 2 - m + (i - (n - 1)), 0)
    return i


def mirror_pad(volume, margins, flat_first=False):
    """Pad the spatial axes of a (Z, Y, X, C) array (any number of spatial axes
    before C, one margin each) by `margins`, mirroring by index; with
    `flat_first`, the first axis padded for patches flat along it."""
    index = [np.array([mirror_index(i - m, n) for i in range(n + 2 * m)])
             for n, m in zip(volume.shape[:len(margins)], margins)]
    if flat_first:
        n, m = volume.shape[0], margins[0]
        index[0] = np.array([flat_plane(i - m, n, m) for i in range(n + 2 * m)])
    return volume[np.ix_(*index)]


def reference_nlmeans(volume, h, patch_radius, search_radius, sigma=0.0, aggregation="pixel",
                      centre="one", guide=None, positions=None):
    """NL-means of a (Z, Y, X, C) float array; radii are 3-tuples (z, y, x). (Any
    number of spatial axes before C, with radii of as many values.)

    Pixel-wise: u(x) = sum_y w(x, y) v(y) / sum_y w(x, y), with
    w(x, y) = exp(-max(d2(x, y) - 2 sigma^2, 0) / h^2) and d2 the mean over patch
    offsets and channels of (v(x + k) - v(y + k))^2; y runs over the search window
    around x, x itself included with weight 1 (centre="one") or with the largest
    weight of the other y (centre="max").

    Patch-wise: every reference p estimates its whole patch as the weighted mean
    of its candidates' patches, sum_y w(p, y) v(y + k) / sum_y w(p, y), and each
    pixel q averages the estimates of all patches that cover it (q = p + k).

    With a `guide` (Z, Y, X, G), d2 compares the guide's patches instead of the
    volume's; the means still average the volume's pixels.

    With `positions` (frames: (Z, 2), where each plane's content sits), the
    window of x in another plane z + k also holds the positions within half
    the search radius (rounded up) of x + positions[z + k] - positions[z], the
    planes beyond the ends taking the positions of the planes they repeat.
    """
    v = np.asarray(volume, dtype=np.float64)
    agg = tuple(patch_radius) if aggregation == "patch" else (0,) * len(patch_radius)
    margins = [s + p + a for s, p, a in zip(search_radius, patch_radius, agg)]
    # Volumes with patches flat along their first axis (frames): no plane may
    # meet its own mirror image there, which would be itself.
    flat = len(patch_radius) >= 3 and patch_radius[0] == 0 and agg[0] == 0
    moved = {}
    if positions is not None:
        n, m = v.shape[0], margins[0]
        where = {i: np.asarray(positions[flat_plane(i, n, m)]) for i in range(-m, n + m)}
        half = [-(-r // 2) for r in search_radius[1:]]
        for z in range(n):
            for k in range(-search_radius[0], search_radius[0] + 1):
                move = where[z + k] - where[z]
                moved[z, k] = [(k, int(move[0]) + a, int(move[1]) + b)
                               for a in range(-half[0], half[0] + 1)
                               for b in range(-half[1], half[1] + 1)] if k else []
        reach = max([abs(t[a]) - search_radius[a] for ts in moved.values() for t in ts
                     for a in (1, 2)] + [0])
        margins = [margins[0]] + [mg + reach for mg in margins[1:]]
    padded = mirror_pad(v, margins, flat)
    compared = padded if guide is None else mirror_pad(np.asarray(guide, np.float64), margins,
                                                       flat)

    def at(pos):
        return tuple(p + m for p, m in zip(pos, margins))

    def patch(pos):
        # The patch around output position `pos` (may lie in the margin).
        return compared[tuple(slice(p + m - r, p + m + r + 1)
                            for p, m, r in zip(pos, margins, patch_radius))]

    offsets = [t for t in itertools.product(*[range(-r, r + 1) for r in search_radius])
               if any(t)]

    def window(p):
        if not moved:
            return offsets
        extra = [t for k in range(-search_radius[0], search_radius[0] + 1)
                 for t in moved[p[0], k]]
        return sorted(set(offsets) | set(extra))

    def weights(p):
        """{t: w(p, p + t)} for the reference p, the centre t = 0 included."""
        reference = patch(p)
        ws = {}
        for t in window(p):
            d2 = np.mean((reference - patch(tuple(a + b for a, b in zip(p, t)))) ** 2)
            ws[t] = np.exp(-max(d2 - 2.0 * sigma ** 2, 0.0) / h ** 2)
        ws[(0,) * len(p)] = max(ws.values(), default=1.0) if centre == "max" else 1.0
        return ws

    out = np.empty_like(v)
    patch_offsets = list(itertools.product(*[range(-r, r + 1) for r in agg]))
    cache = {}
    for q in itertools.product(*[range(n) for n in v.shape[:len(patch_radius)]]):
        estimates = []
        for k in patch_offsets:
            p = tuple(a - b for a, b in zip(q, k))
            if p not in cache:
                cache[p] = weights(p)
            num = np.zeros(v.shape[-1])
            den = 0.0
            for t, w in cache[p].items():
                num += w * padded[at(tuple(a + b for a, b in zip(q, t)))]
                den += w
            estimates.append(num / den)
        out[q] = np.mean(estimates, axis=0)
    return out


def reference_2d(image, h, patch_radius, search_radius, sigma=0.0, **options):
    """The reference for a 2-D image (H, W) or (H, W, C)."""
    img = np.asarray(image, dtype=np.float64)
    gray = img.ndim == 2
    vol = img[None, :, :, None] if gray else img[None]
    out = reference_nlmeans(vol, h, (0, patch_radius, patch_radius),
                            (0, search_radius, search_radius), sigma, **options)[0]
    return out[..., 0] if gray else out


def reference_gaussian_nlmeans(image, h, patch_radius, search_radius, sigma=0.0):
    """NL-means with Gaussian-weighted patches (scikit-image's slow mode) of an
    (*spatial, C) float array, the image mirrored (numpy's reflect): for each
    pixel x and each y of its window, d2 is the mean over the channels of
    sum_k g(k) (v(x + k) - v(y + k))^2, g(k) proportional to
    exp(-|k|^2 / (2 A^2)) with A = (patch width - 1) / 4 and summing to 1;
    w = exp(-max(d2 - 2 sigma^2, 0) / h^2); x itself is in its window."""
    v = np.asarray(image, dtype=np.float64)
    spatial = v.ndim - 1
    margins = [s + p for s, p in zip(search_radius, patch_radius)]
    padded = np.pad(v, [(m, m) for m in margins] + [(0, 0)], mode="reflect")
    grids = np.meshgrid(*[np.arange(-p, p + 1) for p in patch_radius], indexing="ij")
    spreads = [max((2 * p) / 4.0, 1e-12) for p in patch_radius]
    g = np.exp(-sum(k.astype(float) ** 2 / (2 * a * a) for k, a in zip(grids, spreads)))
    g /= g.sum()
    out = np.empty_like(v)
    window = list(itertools.product(*[range(-s, s + 1) for s in search_radius]))
    for x in itertools.product(*[range(n) for n in v.shape[:spatial]]):
        centre = tuple(a + m for a, m in zip(x, margins))
        own = padded[tuple(slice(c - p, c + p + 1) for c, p in zip(centre, patch_radius))]
        num, den = np.zeros(v.shape[-1]), 0.0
        for t in window:
            y = tuple(c + d for c, d in zip(centre, t))
            other = padded[tuple(slice(c - p, c + p + 1) for c, p in zip(y, patch_radius))]
            d2 = np.sum(g[..., None] * (own - other) ** 2) / v.shape[-1]
            w = np.exp(-max(d2 - 2 * sigma ** 2, 0.0) / h ** 2)
            num += w * padded[y]
            den += w
        out[x] = num / den
    return out
