"""Signal-dependent noise made white: the generalised Anscombe transform and its
exact unbiased inverse.

Photon-limited data (microscopy, astronomy, raw-like sensor data, scans) have
Poisson-Gaussian noise: a value z is a * Poisson(x / a) + N(0, b), so its
variance a * x + b grows with the signal x. The generalised Anscombe transform

    f(z) = 2 / a * sqrt(a * z + 3/8 * a^2 + b)

makes that noise approximately Gaussian with unit variance at every intensity,
so a denoiser for white noise can run on f(z). Mapping its result D back by
the algebraic inverse of f is biased (E f(z) is not f(E z)); the exact
unbiased inverse maps D to the x whose E f(z) is D, and has a close
closed-form approximation (Makitalo and Foi, "Optimal inversion of the
generalized Anscombe transformation for Poisson-Gaussian noise", IEEE TIP
2013), used here.
"""

import numpy as np

# The closed-form inverse's terms in 1/D diverge below what the transform of
# non-negative counts reaches: D is held at this floor, whose inverse is 0.
_INVERSE_FLOOR = 0.8
_SQRT_3_2 = np.sqrt(1.5)


def gat_forward(values, a, b):
    """The generalised Anscombe transform of `values`, whose noise variance is
    ``a * x + b`` (a > 0), to values with noise of unit variance."""
    values = np.asarray(values)
    inside = a * values + 0.375 * a * a + b
    return (2.0 / a) * np.sqrt(np.maximum(inside, 0.0))


def gat_inverse(values, a, b):
    """The closed-form approximation of the exact unbiased inverse of
    :func:`gat_forward` (Makitalo and Foi 2013), back in the units of the data."""
    d = np.maximum(np.asarray(values), _INVERSE_FLOOR)
    counts = (d * d / 4 + _SQRT_3_2 / (4 * d) - 11 / (8 * d * d) + 5 * _SQRT_3_2 / (8 * d ** 3)
              - 0.125 - b / (a * a))
    return a * np.maximum(counts, 0.0)


class VarianceStabiliser:
    """The transform of every channel of a (C, ...) array by its own curve.

    `curves` holds one (a, b) per channel: its noise variance is a * x + b.
    """

    def __init__(self, curves, dtype=np.float32):
        self.curves = tuple((float(a), float(b)) for a, b in curves)
        self.dtype = np.dtype(dtype)

    def forward(self, values):
        return self._each(values, gat_forward)

    def backward(self, values):
        return self._each(values, gat_inverse)

    def span(self, top):
        """The largest, over the channels, span of the transform of [0, top]:
        the data range of the stabilised image."""
        return max(float(gat_forward(top, a, b) - gat_forward(0.0, a, b)) for a, b in self.curves)

    def _each(self, values, function):
        if len(values) != len(self.curves):
            raise ValueError(f"{len(self.curves)} variance curves for {len(values)} channels")
        out = np.empty(values.shape, dtype=self.dtype)
        for channel, (a, b) in enumerate(self.curves):
            # In float64: the inverse's terms in 1/D^3 lose digits in float32.
            out[channel] = function(values[channel].astype(np.float64), a, b)
        return out
