"""What a front end needs around a job, beyond :func:`nlmeans.denoise`: whether
its kernels are compiled yet, how long and how large it will be, and runs that
report progress (strips, NL-Bayes's tiles, TIFFs larger than memory, a whole
array with cancellation for the napari widget).

The command line (``nlmeans_cli``) uses these names and nothing below the API:
they are re-exported from the layers that own them, so a front end has one
module to import and the layers below stay free to move.
"""

from nlmeans.api.progress import denoise_with_progress
from nlmeans.api.resolve import resolve_checked
from nlmeans.backends.cpu import kernel_is_cached, passes_compiled
from nlmeans.methods.nlbayes import tile_count
from nlmeans.model.layout import check_image, stand_in
from nlmeans.planning.backend_choice import small_for_numpy
from nlmeans.runners.block import denoise_block
from nlmeans.runners.chunked import task_threads
from nlmeans.runners.strips import denoise_in_strips, estimated_seconds, kernel_work

__all__ = ["check_image", "denoise_block", "denoise_in_strips", "denoise_with_progress",
           "estimated_seconds", "kernel_is_cached", "kernel_work", "small_for_numpy",
           "passes_compiled", "resolve_checked", "stand_in", "task_threads", "tile_count"]
