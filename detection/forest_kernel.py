"""The compiled walk of a laid-out forest (:class:`detection.forest.FlatForest`).

Apart from the layout so that only files big enough to need it import numba and load
the cached kernel (0.8 s together). Compiled once and cached next to this file.
"""

import numpy as np
from numba import njit

BLOCK_ROWS = 256  # rows walked through every tree before the next block


@njit(nogil=True, cache=True)
def depth_sums(X, depth, feature, threshold, missing_left, leaf_depth, block, has_nan,
                out):  # pragma: no cover - compiled; tested through FlatForest.depth_sums
    # Blocks of rows, each walked through every tree in tree order (the block's rows
    # and one tree's nodes stay in cache, and each row's sum is added in scikit-learn's
    # order), level by level across the block: the rows' walks are independent, so the
    # processor overlaps them instead of waiting on one row's chain of loads.
    inner = feature.shape[1]
    nodes = np.zeros(block, dtype=np.int64)
    for start in range(0, X.shape[0], block):
        rows = min(block, X.shape[0] - start)
        for t in range(feature.shape[0]):
            nodes[:rows] = 0
            for _ in range(depth):
                # Arithmetic, not a branch: splits go either way at random.
                if has_nan:
                    for k in range(rows):
                        node = nodes[k]
                        value = X[start + k, feature[t, node]]
                        left = np.int64(value <= threshold[t, node])
                        if value != value:  # rare: this branch is predicted well
                            left = np.int64(missing_left[t, node])
                        nodes[k] = 2 * node + 2 - left
                else:
                    for k in range(rows):
                        node = nodes[k]
                        nodes[k] = 2 * node + 2 - np.int64(
                            X[start + k, feature[t, node]] <= threshold[t, node])
            for k in range(rows):
                out[start + k] += leaf_depth[t, nodes[k] - inner]
