"""Constants of the compiled kernels that callers need without importing Numba
(about 0.3 s): :mod:`nlmeans.kernels.nlm` reads them from here."""

# Running sums along Y start afresh at the rows that are multiples of this
# (see nlm._stream_row and nlm._box_sum_first_axis); output tiles start at such
# rows, and so do strips that must give the whole image's sums.
ROW_RESTART = 16

# exp(-d) is computed as 2**-x with x = d * log2(e) folded into the scale.
LOG2_E = 1.4426950408889634


def moved_radius(radius):
    """The radius of the windows around where moving content went, for a search
    radius `radius`: half of it, rounded up. NL-means's offsets
    (nlm.window_offsets) and NL-Bayes's candidates and tiles take it from here."""
    return -(-radius // 2)
