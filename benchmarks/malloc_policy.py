"""The benchmarks' malloc policy: glibc told to keep freed memory, the same for every contender."""

from __future__ import annotations

import ctypes


def keep_freed_memory() -> str:
    """glibc: keep freed blocks in the process (trim threshold 512 MiB; blocks up to 32 MiB from the heap,
    not mmap). By default glibc returns the top of the heap to the system once 2x the largest freed block
    is free there, so chunked runs and replays that allocate a few MiB per step or chunk keep getting fresh
    pages: thousands of page faults per run, in amounts that depend on the order of allocations (measured
    on the conv model, 100 steps: run() 1,900 faults, the exact chunked floor 24,000, 30% of its time).
    The same setting applies to every contender; --default-malloc measures without it."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
        if libc.mallopt(m_trim_threshold, 512 << 20) == 1 and libc.mallopt(m_mmap_threshold, 32 << 20) == 1:
            return "glibc malloc keeps freed memory (trim threshold 512 MiB, mmap threshold 32 MiB)"
    except (OSError, AttributeError):
        pass
    return "default malloc (not glibc, or mallopt refused)"
