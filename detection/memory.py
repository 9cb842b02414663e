"""Give memory back to the system once a big file's working arrays are let go.

glibc keeps freed heap (hundreds of MB, fragmented by numpy's and pandas' large arrays)
and Arrow's allocator keeps its pool: without this, a process stays as big as its peak,
and the next step's arrays come on top of what the last step already freed. Used
between the steps of a big file (featurizing, then scoring) and by the dashboard, a
long-lived process, after an upload is done with.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

import pyarrow as pa

_LIBC = ctypes.util.find_library("c")
# Files smaller than this leave too little behind to be worth the trim (the HTTP API
# scores hundreds of small bodies a second).
BIG_ROWS = 100_000


def release(*, collect: bool = True) -> None:
    """Return the freed heap and Arrow pool pages to the system (``collect``: after a
    garbage collection, for objects only a cycle kept)."""
    if collect:
        gc.collect()
    pa.default_memory_pool().release_unused()
    if _LIBC and "musl" not in _LIBC:
        libc = ctypes.CDLL(_LIBC)
        if hasattr(libc, "malloc_trim"):  # glibc only
            libc.malloc_trim(0)
