"""Keep freed memory in the process (glibc).

A training step allocates and frees the same large activation buffers every step. glibc serves
blocks above its mmap threshold with fresh mappings and returns freed heap tops to the kernel, so
each step page-faults its buffers in again: measured on 2 cores, a fifth of a CPU run's time was
kernel time (EfficientNet-Lite0 at 28 px: 120 of 522 ms a step; LeNet: 22 of 103). Raising both
thresholds keeps the buffers mapped; the arithmetic, and so every result, is unchanged.
`python bench/allocator.py` prints the ratio."""
from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's ceiling on 64-bit: blocks below it come from the heap
TRIM_THRESHOLD = 1 << 30  # freed memory the heap keeps before giving any back

_kept: bool | None = None


def keep_freed_memory() -> bool:
    """Set both thresholds once per process; False where the C library is not glibc (nothing set)."""
    global _kept
    if _kept is None:
        _kept = False
        if sys.platform.startswith("linux"):
            try:
                mallopt = ctypes.CDLL("libc.so.6").mallopt
            except (OSError, AttributeError):  # musl and others: their allocators have no such knobs
                return False
            # both or the churn stays: the mmap threshold alone still trims, the trim alone still maps
            _kept = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _kept
