"""The compiled search for each reading's nearest earlier shapes (used by
:func:`detection.learning._novelty` for pieces of many rows).

Apart from the learner so that only pieces big enough to need it import numba and load
the cached kernel. Compiled once and cached next to this file.
"""

import numpy as np
from numba import njit


@njit(nogil=True, cache=True, error_model="numpy")
def novelty(series, first, shape, reference, neighbours, least,
            out):  # pragma: no cover - compiled; tested through learning._novelty
    # The shape of reading t is the window of the `shape` readings ending at t, less
    # their mean. Its novelty is the mean distance to the `neighbours` nearest among the
    # `reference` ones that end before it starts (windows holding a NaN left out), and 0
    # when it holds a NaN or fewer than `least` windows are behind it. Squared distances
    # are summed in window order, as numpy sums them: the same bits.
    n = series.shape[0]
    nans = np.zeros(n + 1, dtype=np.int64)  # NaNs among series[:i]
    for i in range(n):
        nans[i + 1] = nans[i] + (series[i] != series[i])
    whole = np.zeros(n + 1, dtype=np.int64)  # windows without a NaN starting before s
    for s in range(n):
        whole[s + 1] = whole[s] + (s + shape <= n and nans[s + shape] == nans[s])
    means = np.zeros(n)  # each window's mean, its readings summed in order
    for s in range(n - shape + 1):
        total = 0.0
        for k in range(shape):
            total += series[s + k]
        means[s] = total / shape
    best = np.empty(neighbours)
    distance = np.empty(reference)
    for t in range(first, n):
        out[t - first] = 0.0
        current = t - shape + 1
        if current < 0 or nans[t + 1] != nans[current]:
            continue
        last = current - shape
        lo = max(0, last - reference + 1)
        if last < 0 or whole[last + 1] - whole[lo] < least:
            continue
        count = last - lo + 1
        distance[:count] = 0.0
        middle = means[lo:lo + count]
        for k in range(shape):  # a reading of the shape at a time: the loop vectorises
            here = series[current + k] - means[current]
            earlier = series[lo + k:lo + k + count]
            for s in range(count):
                step = here - (earlier[s] - middle[s])
                distance[s] += step * step
        found = 0
        farthest = np.inf
        for s in range(count):
            total = distance[s]
            if not total < farthest:  # no nearer than the farthest kept, or a NaN
                continue
            slot = min(found, neighbours - 1)
            while slot > 0 and best[slot - 1] > total:
                best[slot] = best[slot - 1]
                slot -= 1
            best[slot] = total
            found += 1
            if found >= neighbours:
                farthest = best[neighbours - 1]
        mean = 0.0
        for k in range(neighbours):
            mean += np.sqrt(best[k])
        out[t - first] = mean / neighbours
