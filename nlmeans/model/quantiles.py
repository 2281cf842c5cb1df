"""Medians and quantiles of flattened arrays, by ``np.partition``.

They equal ``np.median`` and ``np.quantile`` (its default, linear method) to
float rounding, NaN included (a NaN anywhere gives NaN). numpy's own import
``numpy.ma`` on first use, about 0.02 s: a twentieth of a small image's whole
run on the command line.
"""

import numpy as np


def median(values):
    """The median of all of `values` (the mean of the two middle ones for an even
    count), as a float."""
    flat = _floats(values)
    if np.isnan(flat.min()):
        return float("nan")
    middle = flat.size // 2
    if flat.size % 2:
        return float(np.partition(flat, middle)[middle])
    ordered = np.partition(flat, (middle - 1, middle))
    return float((ordered[middle - 1] + ordered[middle]) / 2)


def quantiles(values, fractions):
    """The quantiles of all of `values` at `fractions` (each in [0, 1]): linear
    interpolation between the order statistics around fraction * (count - 1),
    as floats."""
    flat = _floats(values)
    if np.isnan(flat.min()):
        return [float("nan")] * len(fractions)
    last = flat.size - 1
    positions = [fraction * last for fraction in fractions]
    below = [min(int(np.floor(position)), last) for position in positions]
    ordered = np.partition(flat, sorted({k for b in below for k in (b, min(b + 1, last))}))
    return [_lerp(ordered[b], ordered[min(b + 1, last)], position - b)
            for b, position in zip(below, positions)]


def _floats(values):
    flat = np.asarray(values).ravel()
    if flat.size == 0:
        raise ValueError("no values to take a median or quantile of")
    return flat if flat.dtype.kind == "f" else flat.astype(np.float64)


def _lerp(low, high, t):
    # numpy's form: from the nearer end, so that t = 1 gives `high` exactly.
    return float(low + (high - low) * t if t < 0.5 else high - (high - low) * (1 - t))
