"""pipeline.util.memory: glibc's mmap threshold fixed, so freed large buffers leave the heap.

Each case runs in a fresh interpreter: the setting is process-wide and the threshold's dynamic
adjustment, which is what the function switches off, happens once per process."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import subprocess
import sys
import textwrap

import pytest

# How many bytes a 4 MiB allocation adds to mmapped memory (mallinfo2's hblkhd), after one
# such buffer has been freed: with glibc's dynamic threshold, none (the heap serves it).
PROBE = textwrap.dedent(
    """
    import ctypes, ctypes.util, json, sys
    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallinfo2.restype = Info
    if sys.argv[1] == "fixed":
        from pipeline.util.memory import unmap_large_buffers
        assert unmap_large_buffers()
    first = bytes(4 << 20); del first          # freed: glibc raises its threshold, unless fixed
    before = libc.mallinfo2().hblkhd
    second = bytes(4 << 20)
    print(json.dumps(libc.mallinfo2().hblkhd - before))
    """
)


def _glibc_has_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallinfo2")
    except OSError:
        return False


def mapped_growth(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(json.loads(out.stdout))


@pytest.mark.skipif(
    not _glibc_has_mallinfo2(),
    reason="NOT RUN: this libc is not glibc >= 2.33 (no mallinfo2 to read; CI has glibc 2.36)",
)
def test_a_freed_large_buffer_no_longer_moves_the_next_one_onto_the_heap() -> None:
    assert mapped_growth("dynamic") == 0  # glibc's default: the heap takes it
    assert mapped_growth("fixed") >= 4 << 20  # its own mapping, unmapped when freed
