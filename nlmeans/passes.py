"""Running :class:`~nlmeans.settings.Settings`: its passes, in order, on a backend.

Every pass is the NL-means formula, u(x) = Σ_y w(x, y) v(y) / Σ_y w(x, y), over
the same noisy pixels v; what differs is what the weights compare. A guided pass
compares patches of the previous pass's result, which are far less noisy than
the image's. With opponent colours, the weights compare patches of the
transformed image; the means of the transformed pixels are then transformed
back, which is exact because the transform is linear and every channel gets the
same weights.
"""

from dataclasses import replace

import numpy as np


def run_passes(values, settings, bounds, rounded=False, backend=None, progress=None):
    """Denoise the (C, Z, Y, X) float `values` (in the settings' precision) as
    `settings` says (NL-Bayes settings: :func:`nlmeans.nlbayes.run_bayes`); the
    result is clipped to `bounds` and, if `rounded`, rounded to integers. No
    pass: the values come back as they are.

    `backend(values, guide, step, dtype, bounds, rounded)` runs one pass; the
    default is the compiled CPU kernel (:func:`nlmeans.backend.numba_pass`).
    `progress(done, total)` follows NL-Bayes's tiles (NL-means's passes report
    nothing here: long NL-means jobs run in strips, :mod:`nlmeans.strips`).
    """
    if settings.method == "nlbayes":
        from nlmeans.nlbayes import run_bayes

        return run_bayes(values, settings, bounds, rounded, progress) if settings.passes \
            else values
    if backend is None:
        from nlmeans.backend import numba_pass as backend
    transform = OpponentColours(settings.chroma_weight, settings.work_dtype) \
        if settings.chroma_weight != 1.0 else None
    result = values
    for index, step in enumerate(settings.passes):
        guide = result if step.guided else None
        last = index == len(settings.passes) - 1
        result = _run_pass(values, guide, step, settings.work_dtype, bounds, rounded and last,
                           backend, transform)
    return result


def _run_pass(values, guide, step, dtype, bounds, rounded, backend, transform):
    """One pass, in opponent colours when `transform` is given."""
    if transform is None:
        return backend(values, guide, step, dtype, bounds, rounded)
    if guide is not None:
        guide = transform.forward(guide)
    step = replace(step, sigma=step.sigma * transform.noise_scale)
    # Rebound, so that RGB values no one else holds (a streamed batch) are freed.
    values = transform.forward(values)
    out = backend(values, guide, step, dtype, (-np.inf, np.inf), False)
    # The result lies within the RGB input's range; clipped for rounding.
    out = np.clip(transform.backward(out), *bounds)
    return np.rint(out, out=out) if rounded else out


class OpponentColours:
    """RGB to opponent colours with the chroma axes scaled by `chroma_weight`, and back.

    The rows of the orthonormal opponent basis are brightness (1, 1, 1)/√3 and
    chroma (1, 0, −1)/√2 and (1, −2, 1)/√6; backward is its transpose with the
    chroma scaling undone. White noise of level sigma in RGB has level
    ``sigma * noise_scale`` on average over the three transformed channels.
    """

    def __init__(self, chroma_weight, dtype):
        basis = np.array([[1.0, 1.0, 1.0], [1.0, 0.0, -1.0], [1.0, -2.0, 1.0]])
        basis /= np.linalg.norm(basis, axis=1, keepdims=True)
        scale = np.array([1.0, chroma_weight, chroma_weight])
        self.forward_matrix = (basis * scale[:, None]).astype(dtype)
        self.backward_matrix = (basis.T / scale[None, :]).astype(dtype)
        self.noise_scale = np.sqrt((1.0 + 2.0 * chroma_weight ** 2) / 3.0)

    def forward(self, volume):
        return np.tensordot(self.forward_matrix, volume, axes=1)

    def backward(self, volume):
        return np.tensordot(self.backward_matrix, volume, axes=1)
