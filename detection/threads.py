"""How many threads detection works in: one knob for every parallel step.

The steps that use it (moving statistics and feature kinds, the forest's trees, CSV
formatting) run in numpy, bottleneck, scikit-learn's Cython and Arrow, which release
the GIL, so threads use the cores without copying data to other processes. Two matches
the 2-core machine Vigil is sized and benchmarked on (bench/speed.py).
"""

THREADS = 2
