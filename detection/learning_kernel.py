"""The live learner's compiled parts (:mod:`detection.learning`): each reading's nearest
earlier shapes, and the tail of each column's recent history.

Apart from the learner so that only pieces big enough to need them import numba and load
the cached kernels. Compiled once and cached next to this file.
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


@njit(nogil=True, cache=True, error_model="numpy")
def tails(values, new, window, least, low, high, out_low,
          out_high):  # pragma: no cover - compiled; tested through learning._tail
    # For each of the last `new` positions i: the `low` and `high` quantiles of the
    # values before it, values[i - window:i], NaNs left out (NaN with fewer than `least`),
    # interpolated as pandas' rolling quantile does, bit for bit. The window's values are
    # counted by their rank among all the values in a Fenwick tree: one in, one out and
    # each order statistic in steps of log2(len(values)).
    n = values.shape[0]
    first = n - new
    order = np.argsort(values, kind="mergesort")  # NaNs last: never counted
    ranked = values[order]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    tree = np.zeros(n + 1, dtype=np.int64)
    top = 1
    while top * 2 <= n:
        top *= 2
    count = 0
    for j in range(max(0, first - window), first):
        if values[j] == values[j]:
            _count(tree, rank[j], 1)
            count += 1
    for i in range(first, n):
        if i > first:
            if values[i - 1] == values[i - 1]:
                _count(tree, rank[i - 1], 1)
                count += 1
            if i - 1 - window >= 0 and values[i - 1 - window] == values[i - 1 - window]:
                _count(tree, rank[i - 1 - window], -1)
                count -= 1
        if count < least:
            out_low[i - first] = np.nan
            out_high[i - first] = np.nan
            continue
        out_low[i - first] = _quantile(tree, ranked, top, count, low)
        out_high[i - first] = _quantile(tree, ranked, top, count, high)


@njit(cache=True)
def _count(tree, rank, step):  # pragma: no cover - compiled
    at = rank + 1
    while at < tree.shape[0]:
        tree[at] += step
        at += at & -at


@njit(cache=True)
def _smallest(tree, ranked, top, k):  # pragma: no cover - compiled
    # The k-th smallest counted value (from 0).
    at, left, step = 0, k + 1, top
    while step:
        if at + step < tree.shape[0] and tree[at + step] < left:
            at += step
            left -= tree[at]
        step //= 2
    return ranked[at]


@njit(cache=True, error_model="numpy")
def _quantile(tree, ranked, top, count, q):  # pragma: no cover - compiled
    if count == 1:
        return _smallest(tree, ranked, top, 0)
    at = q * (count - 1)
    below = int(at)
    if at == below:
        return _smallest(tree, ranked, top, below)
    low = _smallest(tree, ranked, top, below)
    return low + (_smallest(tree, ranked, top, below + 1) - low) * (at - below)
