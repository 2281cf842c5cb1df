"""The scale of the weights' exponent, shared by every backend.

A weight is exp(-max(d² - 2σ², 0) / h²), d² a patch's mean squared difference;
the backends compare patch *sums* over `terms` values, so the mean and h fold
into one factor (:func:`decay_scale`), and the compiled kernels, whose
exponential is base 2, also fold in log2(e) (:func:`kernel_scales`).
"""

import numpy as np

from nlmeans.kernels.constants import LOG2_E


def kernel_scales(h, sigma, terms, work_dtype):
    """(threshold, inv_scale) of the kernel's weight exp2(-max(D - threshold, 0) *
    inv_scale), D the patch *sum* of squared differences over `terms` values."""
    # The kernel compares patch sums: fold the mean into the threshold and the scale.
    threshold = work_dtype.type(2.0 * sigma * sigma * terms)
    # The kernel's exponential is base 2: fold log2(e) into the scale.
    inv_scale = decay_scale(h, terms, work_dtype, LOG2_E)
    cap = scale_cap(work_dtype)
    if threshold > 0:
        # Keep threshold * inv_scale finite: a larger scale changes only weights of
        # patches whose distance equals the threshold to within float rounding.
        inv_scale = min(inv_scale, cap / threshold)
    return threshold, work_dtype.type(inv_scale)


def scale_cap(work_dtype):
    """The largest scale of a weight's exponent: finite, so that 0 * scale stays 0."""
    return 1e30 if work_dtype == np.float32 else 1e300


def decay_scale(h, terms, work_dtype, numerator=1.0):
    """numerator / (h² terms), the factor of a patch sum of squared differences
    over `terms` values in the weight's exponent. A tiny h (h² underflows)
    means: only identical patches get weight; the scale is capped (see
    scale_cap) so that it never becomes inf, nor inf * 0 a NaN."""
    denominator = h * h * terms
    cap = scale_cap(work_dtype)
    return min(numerator / denominator, cap) if denominator > 0 else cap
