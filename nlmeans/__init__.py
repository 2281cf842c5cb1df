"""nlmeans: fast, exact non-local means denoising with a Numba kernel."""

from nlmeans.denoise import Report, denoise, denoise_with_report
from nlmeans.frames import denoise_frames
from nlmeans.noise import NoiseModel, estimate_noise_model
from nlmeans.parameters import estimate_noise
from nlmeans.resolve import resolve
from nlmeans.settings import Pass, Settings


def __getattr__(name):
    # __version__ on demand: importing importlib.metadata costs 0.04 s, a tenth of
    # a small image's whole run on the command line.
    if name != "__version__":
        raise AttributeError(f"module 'nlmeans' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nlmeans")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


__all__ = ["denoise", "denoise_with_report", "denoise_frames", "resolve", "estimate_noise", "estimate_noise_model",
           "NoiseModel", "Settings", "Pass", "Report", "__version__"]
