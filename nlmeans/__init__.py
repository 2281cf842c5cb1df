"""nlmeans: fast, exact non-local means denoising with a Numba kernel."""

from importlib.metadata import PackageNotFoundError, version as _version

from nlmeans.denoise import Report, denoise, denoise_with_report
from nlmeans.frames import denoise_frames
from nlmeans.noise import NoiseModel, estimate_noise_model
from nlmeans.parameters import estimate_noise
from nlmeans.resolve import resolve
from nlmeans.settings import Pass, Settings

try:
    __version__ = _version("nlmeans")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["denoise", "denoise_with_report", "denoise_frames", "resolve", "estimate_noise", "estimate_noise_model",
           "NoiseModel", "Settings", "Pass", "Report", "__version__"]
