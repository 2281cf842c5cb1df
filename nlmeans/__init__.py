"""nlmeans: fast, exact non-local means (and NL-Bayes) denoising with Numba kernels.

The public names are re-exported here from the layers that own them; each
layer is a sub-package that imports only the layers below it:

- ``api``: :func:`denoise`, :func:`denoise_with_report`, :func:`denoise_frames`,
  :func:`resolve` (validate, decide once, run);
- ``runners``: in memory, in strips, dask chunks, TIFFs larger than memory, frames;
- ``planning``: memory budgets and where the passes run;
- ``methods``: NL-means passes, NL-Bayes, the non-local operation;
- ``backends``: one pass on the compiled kernel, the NumPy pass or the GPU;
- ``kernels``, ``model`` and ``io`` at the bottom: the Numba kernels; settings,
  noise model and automatic rules; files in and out.
"""

from nlmeans.api.denoise import Report, denoise, denoise_with_report
from nlmeans.api.frames import denoise_frames
from nlmeans.api.resolve import resolve
from nlmeans.model.noise import NoiseModel, estimate_noise_model
from nlmeans.model.parameters import estimate_noise
from nlmeans.model.settings import Pass, Settings


def __getattr__(name):
    # __version__ on demand (see nlmeans.api.version).
    if name != "__version__":
        raise AttributeError(f"module 'nlmeans' has no attribute {name!r}")
    from nlmeans.api.version import package_version  # on demand, as said above

    return package_version()


__all__ = ["denoise", "denoise_with_report", "denoise_frames", "resolve", "estimate_noise",
           "estimate_noise_model", "NoiseModel", "Settings", "Pass", "Report", "__version__"]
