"""Running :class:`~nlmeans.model.settings.Settings`: its passes, in order, on a backend.

Every pass is the NL-means formula, u(x) = Σ_y w(x, y) v(y) / Σ_y w(x, y), over
the same noisy pixels v; what differs is what the weights compare. A guided pass
compares patches of the previous pass's result, which are far less noisy than
the image's. With opponent colours, the weights compare patches of the
transformed image; the means of the transformed pixels are then transformed
back, which is exact because the transform is linear and every channel gets the
same weights.
"""

from dataclasses import replace
from functools import partial

import numpy as np

from nlmeans.backends.cpu import numba_pass
from nlmeans.methods.nlbayes import run_bayes, run_bayes_frames
from nlmeans.model.colour import OpponentColours
from nlmeans.model.motion import follows_motion, frame_positions
from nlmeans.model.stabilise import VarianceStabiliser


def run_passes(values, settings, bounds, rounded=False, backend=None, progress=None,
               one_block=False):
    """Denoise the (C, Z, Y, X) float `values` (in the settings' precision) as
    `settings` says (NL-Bayes settings: :func:`nlmeans.methods.nlbayes.run_bayes`); the
    result is clipped to `bounds` and, if `rounded`, rounded to integers. No
    pass: the values come back as they are.

    `backend(values, guide, step, dtype, bounds, rounded)` runs one pass; the
    default is the compiled CPU kernel (:func:`nlmeans.backends.cpu.numba_pass`).
    `progress(done, total)` follows NL-Bayes's tiles (NL-means's passes report
    nothing here: long NL-means jobs run in strips, :mod:`nlmeans.runners.strips`).

    With a variance curve (signal-dependent noise) the passes run on the
    values' variance-stabilising transform, and their result is mapped back.

    `one_block`: NL-Bayes frames (settings with a time axis) run as one block,
    not in blocks of frames with their context (a stream's block and its context).
    """
    if settings.variance_curve is not None and settings.passes:
        stabiliser = VarianceStabiliser(settings.variance_curve, settings.work_dtype)
        stable = replace(settings, variance_curve=None)
        result = run_passes(stabiliser.forward(values), stable, (-np.inf, np.inf), False,
                            backend, progress, one_block)
        return mapped_back(stabiliser, result, bounds, rounded)
    if settings.method == "nlbayes":
        if not settings.passes:
            return values
        run = run_bayes if settings.time_axis is None or one_block else run_bayes_frames
        return run(values, settings, bounds, rounded, progress)
    if backend is None:
        backend = numba_pass
    if _on_the_kernel(backend) and follows_motion(settings):
        backend = partial(backend, positions=frame_positions(values))
    transform = OpponentColours(settings.chroma_weight, settings.work_dtype) \
        if settings.chroma_weight != 1.0 else None
    result = values
    for index, step in enumerate(settings.passes):
        guide = result if step.guided else None
        last = index == len(settings.passes) - 1
        result = run_pass(values, guide, step, settings.work_dtype, bounds, rounded and last,
                          backend, transform)
    return result


def mapped_back(stabiliser, result, bounds, rounded):
    """The result of passes run on `stabiliser`'s transform, back in the data's
    units, clipped to `bounds` and, if `rounded`, rounded (run_passes, and a
    stream of frames batch by batch)."""
    result = np.clip(stabiliser.backward(result), *bounds)
    return np.rint(result, out=result) if rounded else result


def _on_the_kernel(backend):
    """Whether `backend` is the compiled CPU kernel (or a partial of it, as
    strips make), which takes the frames' positions; the others (CUDA, the
    NumPy pass for small images) do not follow motion."""
    return (backend is numba_pass or isinstance(backend, partial)
            and backend.func is numba_pass and "positions" not in backend.keywords)


def run_pass(values, guide, step, dtype, bounds, rounded, backend, transform):
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
