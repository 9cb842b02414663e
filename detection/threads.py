"""How many threads detection works in: one knob for every parallel step.

The steps that use it (moving statistics and feature kinds, the forest's trees, CSV
formatting) run in numpy, bottleneck, numba and Arrow code that releases the GIL, so
threads use the cores without copying data to other processes. It follows the cores this
process may run on (its CPU affinity, which containers and ``taskset`` narrow), not the
machine's count.
"""

import os


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity on this platform (macOS)
        return max(1, os.cpu_count() or 1)


# Set for a process that shares the cores with others (a local Dask cluster's workers
# each take their share): the threads its detection uses; else the cores it may run on.
THREADS_SETTING = "VIGIL_THREADS"
THREADS = int(os.environ.get(THREADS_SETTING) or 0) or available_cores()
