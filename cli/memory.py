"""Large arrays kept off the C heap during long runs.

glibc's malloc raises its mmap threshold (up to 32 MB) each time a large
mmapped block is freed, so later frame-sized arrays come from the heap, whose
freed pages stay with the process as it fragments: `nlmeans video --method
nlbayes` on 1080p colour peaked at 1419 MB over 16 frames and 1509 MB over 40.
A fixed threshold keeps such arrays mmapped, handed back when freed: 1431 MB
over 40 frames (trimming the heap after each frame instead: 1484 MB).
"""

import ctypes
import sys

# mallopt's parameter for the threshold (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
# Allocations from 1 MiB up are mmapped: frames and their planes (a 1080p
# float32 plane is 8 MB), not the kernels' small scratch.
LARGE_ALLOCATION = 1 << 20


def _mallopt():
    """glibc's mallopt, or None (another C library or system)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt


_MALLOPT = _mallopt()


def map_large_arrays():
    """Serve allocations of LARGE_ALLOCATION bytes and more with mmap, for the
    rest of the process (glibc; elsewhere nothing). True if set."""
    return _MALLOPT is not None and _MALLOPT(M_MMAP_THRESHOLD, LARGE_ALLOCATION) == 1
