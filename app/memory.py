"""Give memory back to the system after a big file is done with.

The dashboard is a long-lived process: after a 10M-row upload is scored, glibc keeps
the freed heap (hundreds of MB, fragmented by numpy's and pandas' large arrays) and
Arrow's allocator keeps its pool, so the process would look as big as at its peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

import pyarrow as pa

_LIBC = ctypes.util.find_library("c")


def release() -> None:
    """Collect garbage and return the freed heap and Arrow pool pages to the system."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    if _LIBC and "musl" not in _LIBC:
        libc = ctypes.CDLL(_LIBC)
        if hasattr(libc, "malloc_trim"):  # glibc only
            libc.malloc_trim(0)
