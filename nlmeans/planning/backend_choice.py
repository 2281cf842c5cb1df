"""Where a pass runs: the compiled CPU kernel, the NumPy pass, or the GPU.

Decided once per image, from the settings and the image's size only, before
anything runs (never from what ran before, such as whether a kernel is
compiled yet: the same command gives the same bytes); the runners and the API
take the backend function this gives.
"""

import math

from nlmeans.backends import cuda

# Whole images with less work than this run on the NumPy pass: about 4
# million (pixel, offset) pairs over all passes, grey (a colour pair counts
# (1 + channels) / 2 times), e.g. automatic mode up to 64² grey, 0.15 s of
# NumPy. Importing Numba and loading the kernel's cached machine code costs
# 0.9 s before the first pixel (and the first run compiles for seconds); the
# NumPy pass takes 25 ns per pair grey, 45 ns RGB, after 0.06 s (measured on
# a 2-core AMD EPYC, 32² to 128²).
NUMPY_WORK = 4_000_000

def _work(settings, spatial_shape):
    """(pixel, offset) pairs over all passes, a colour pair counting
    (1 + channels) / 2; None where the NumPy pass does not apply."""
    if settings.method != "nlmeans" or settings.time_axis is not None:
        return None
    pairs = sum(math.prod(2 * r + 1 for r in step.search_radius) for step in settings.passes)
    return math.prod(spatial_shape) * pairs * (1 + settings.channels) / 2


def small_for_numpy(settings, spatial_shape):
    """Whether `settings` on an image of `spatial_shape` run faster on the NumPy
    pass than Numba takes to start (see NUMPY_WORK)."""
    work = _work(settings, spatial_shape)
    return work is not None and work <= NUMPY_WORK


DEVICES = ("cpu", "cuda", "auto")


def choose_backend(device, settings):
    """(backend function, "cpu" or "cuda") for `device`: "cuda" needs a usable
    GPU and settings it can run (2-D, float32, equal radii, patch radius <= 5);
    "auto" takes the GPU when both hold, else the CPU. The CPU's function is
    None: the callers' default, the compiled kernel."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cpu":
        return None, "cpu"
    reason = cuda.unsupported(settings) or (None if cuda.cuda_available() else
                                            "no usable CUDA GPU (numba-cuda and a driver are "
                                            "needed: pip install 'nlmeans[cuda]')")
    if reason is None:
        return cuda.cuda_pass, "cuda"
    if device == "cuda":
        raise ValueError(f"device='cuda': {reason}")
    return None, "cpu"

