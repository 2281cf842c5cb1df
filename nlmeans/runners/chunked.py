"""Dask arrays: the settings decided once, then every chunk denoised with its halo.

``denoise(dask_array)`` returns a lazy dask array. The settings are resolved
once for the whole array: its minimum and maximum and an even sample of it
(:mod:`nlmeans.model.sample`, the same sample a NumPy array of the same pixels is
measured on) are computed first, in one pass of the scheduler. Then
``map_overlap`` grows every chunk by the settings' halo from its neighbours,
with ``boundary="none"``: at the array's true borders nothing is added and the
in-memory denoiser mirrors the image there, as it does for a NumPy array. Inside
the array a chunk sees its real neighbours, so chunk seams do not show: the
result equals the NumPy one to float32 rounding (the kernel's running sums start
at other places).

Each chunk task runs the compiled kernel with ``cores / concurrent tasks``
Numba threads: one on the threaded scheduler's worker threads (it runs a task
per core), a share of the cores on a distributed worker with several threads,
all of them when tasks run one at a time (the synchronous scheduler).
"""

import os
import threading

import numpy as np

from nlmeans.model.layout import check_finite, check_pixel_type
from nlmeans.model.sample import assemble, sample_regions
from nlmeans.runners.block import denoise_block


def is_dask_array(image):
    """Whether `image` is a dask array (without importing dask)."""
    return type(image).__module__.split(".")[0] == "dask" and hasattr(image, "map_overlap")


def measure(array, channel_axis, sample=True):
    """((min, max), (sample, sample's channel axis) or None without `sample`)
    of a dask array, computed together; ValueError for a dtype that cannot be
    denoised, an empty array or non-finite values."""
    import dask  # an optional dependency (the [dask] extra)

    check_pixel_type(array.dtype, array.shape)
    regions = sample_regions(array.shape, channel_axis) if sample else None
    pieces = ([array[r] for r in regions] if regions else [array]) if sample else []
    low, high, *pieces = dask.compute(array.min(), array.max(), *pieces)
    check_finite((low, high), array.dtype)
    if sample:
        sample = (assemble(pieces, array.shape, channel_axis) if regions
                  else (pieces[0], channel_axis))
    return (low, high), sample


def denoise_dask(array, settings, bounds, backend=None):
    """The lazy result of `settings` on the dask `array` (see the module)."""
    axis = settings.channel_axis
    if axis is not None and len(array.chunks[axis]) > 1:
        array = array.rechunk({axis: -1})  # a chunk needs all its channels
    spatial = [i for i in range(array.ndim) if i != axis]
    depth = {i: 0 for i in range(array.ndim)}
    for i, halo in zip(spatial, settings.halo):
        depth[i] = halo
    return array.map_overlap(_denoise_chunk, depth=depth, boundary="none", dtype=array.dtype,
                             meta=np.empty((0,) * array.ndim, dtype=array.dtype),
                             settings=settings, bounds=bounds, backend=backend)


def _denoise_chunk(block, settings, bounds, backend):
    import numba  # deferred: importing Numba costs ~0.3 s

    threads = task_threads()
    if threads is not None:
        numba.set_num_threads(threads)  # per thread: this task only
    return denoise_block(block, settings, bounds, backend)


def task_threads():
    """Numba threads for a task on the current thread, or None (leave as set):
    the cores shared among the tasks that run at once."""
    import numba  # deferred: importing Numba costs ~0.3 s

    cores = numba.config.NUMBA_NUM_THREADS
    try:
        from distributed import get_worker  # optional (the [dask] extra)

        worker = get_worker()
    except (ImportError, ValueError):
        worker = None
    if worker is not None:
        return max(1, cores // max(1, worker.state.nthreads))
    if threading.current_thread() is threading.main_thread():
        return None  # the synchronous scheduler: one task at a time
    return max(1, cores // (os.cpu_count() or 1))
