"""glibc's malloc, told to give large buffers back to the system when they are freed.

glibc serves a request of at least ``M_MMAP_THRESHOLD`` bytes with a mapping of its own, which
``free`` unmaps at once. The threshold starts at 128 KiB but is *dynamic*: the first time such
a mapping is freed, glibc raises the threshold to its size. From then on, a process that
allocates and frees buffers of a few MiB over and over (the GCS writer's 4 MiB pieces, the
client's copy of each, the HTTP blocks of a download) takes them from the heap of whichever
thread asked, and freed ones stay there, fragmented across the upload thread's arena and the
main one. Measured on the download of a 224 MB month into a ``gs://`` lake (benchmarks/lake.py,
medians of 3 runs): peak RSS 149 MB with the dynamic threshold, 137 MB with it fixed at 1 MiB,
and no slower. Setting the threshold explicitly switches the dynamic adjustment off.

Other allocators (musl, or jemalloc preloaded) have no ``mallopt``; there this does nothing.
Arrow's buffers come from its own pool (jemalloc, pipeline/__init__.py) and are not affected.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
LARGE_BUFFER = 1 << 20


@functools.cache
def unmap_large_buffers() -> bool:
    """Fix glibc's mmap threshold at ``LARGE_BUFFER`` bytes for this process; True if it took.
    Process-wide, so done once."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, LARGE_BUFFER))
    if not done:
        log.debug("mallopt(M_MMAP_THRESHOLD, %d) was refused", LARGE_BUFFER)
    return done
