"""Memory budgets: what a job needs, against what the machine has available.

An image whose work would not fit is refused, with the estimate, before
anything is allocated; images larger than memory go through the streamed
runners (:mod:`nlmeans.runners.outofcore`) instead.
"""

import numpy as np


def available_memory():
    """Bytes of memory available to a new allocation (MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_memory(shape, patch_radius, search_radius, n_spatial, work_dtype, refine=False):
    """Refuse, with the estimate, an image whose NL-means working memory would not fit.

    The work needs the mirrored copy, the result and a few image-sized
    temporaries (input conversion, output cast, SURE's second run); the
    per-thread tile buffers are small and bounded. We do not tile whole images
    to disk: an image that does not fit is refused before anything is allocated.
    """
    radii = []
    for value in (patch_radius, search_radius):
        value = value if value is not None else 10
        radii.append(value if isinstance(value, (tuple, list)) else (value,) * n_spatial)
    margin = [2 * (2 * p + s) for p, s in zip(*radii)]  # at most, with patch aggregation
    spatial = shape[-n_spatial:]
    padded = shape[0] * int(np.prod([n + m for n, m in zip(spatial, margin)]))
    # The second pass keeps the first result and a mirrored copy of it.
    needed = ((2 if refine else 1) * padded + (6 if refine else 5) * shape[0]
              * int(np.prod(spatial))) * work_dtype.itemsize
    _refuse_over(needed, "denoising this image")


def check_bayes_fits(shape, work_dtype, in_memory):
    """Refuse a (C, Z, Y, X) image that is not in memory (NL-Bayes runs whole
    images), or whose NL-Bayes would not fit in memory, with the estimate: the
    float64 numerator and weight, the image, the basic estimate and the result
    in the work dtype, and the colour transform's copies (a step divides its sums
    into its result without temporaries)."""
    if not in_memory:
        raise ValueError("method='nlbayes' needs the whole image in memory; use "
                         "method='nlmeans' for images run in pieces")
    pixels = int(np.prod(shape[1:]))
    needed = pixels * (8 * shape[0] + 8 + 5 * work_dtype.itemsize * shape[0])
    _refuse_over(needed, "denoising this image with NL-Bayes")


def _refuse_over(needed, what):
    """MemoryError when `needed` bytes exceed 90 % of the available memory."""
    available = available_memory()
    if available is not None and needed > 0.9 * available:
        raise MemoryError(f"{what} needs about {size_text(needed)} of memory and only "
                          f"{size_text(available)} is available; crop or downscale it, or "
                          f"free memory")


def size_text(count):
    """Bytes as GiB or MiB, one decimal."""
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.1f} MiB"
