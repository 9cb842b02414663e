"""Scoring a fitted scikit-learn IsolationForest with a compiled kernel.

scikit-learn fits the forest; scoring walks its trees here, in a numba kernel
(detection.forest_kernel; numpy for a few rows, which a kernel would cost more to load
than to use) that follows scikit-learn's own rule node by node (a NaN goes where ``missing_go_to_left``
says, otherwise ``x <= threshold`` goes left, the float32 value compared with the float64
threshold) and adds the leaf depths tree by tree, in tree order: the depth sums, and so
the scores, are bit for bit those of ``IsolationForest.score_samples``. The kernel
releases the GIL, so row chunks score in threads; it is compiled once and cached next
to this file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

# Up to this many rows, numpy walks every tree at once unless the process has loaded the
# compiled kernel already: importing numba and loading the kernel from its cache takes
# 0.5-0.8 s, what numpy takes for 40,000-70,000 rows (the kernel is ten times faster once
# loaded; numpy's working arrays grow with rows x trees, 8 MB each at this many). The
# distinct rows of a million logins are about 6,000. Long-running processes (the API's
# workers, `vigil stream`) load the kernel at start.
SMALL_ROWS = 10_000
KERNEL = "detection.forest_kernel"
# Rows are walked once per distinct row (distinct_rows) in inputs of REPEAT_MIN_ROWS or
# more when at most REPEAT_SHARE of REPEAT_SAMPLE evenly spaced rows are distinct.
REPEAT_MIN_ROWS = 20_000
REPEAT_SAMPLE = 2_000
REPEAT_SHARE = 0.5


@dataclass(frozen=True)
class FlatForest:
    """Every tree laid out as a complete binary tree of the forest's greatest depth:
    node i's children are 2i + 1 and 2i + 2, so every row takes exactly ``depth`` steps
    with no child pointers to load. A leaf of scikit-learn's above that depth continues
    as pass-through nodes (threshold +inf, NaN to the left) down to one leaf slot.
    """

    depth: int
    feature: np.ndarray  # int64, (trees, 2^depth - 1)
    threshold: np.ndarray  # float32, same shape: see _float32_below
    missing_left: np.ndarray  # bool, same shape
    leaf_depth: np.ndarray  # float64, (trees, 2^depth): what a row ending there is credited

    @classmethod
    def of(cls, forest) -> FlatForest:
        """From a fitted ``sklearn.ensemble.IsolationForest``.

        A row ending in a leaf is credited what scikit-learn credits it, computed the
        same way: the leaf's depth plus the expected depth of the subtree ``max_depth``
        cut off there, minus one.
        """
        trees = forest.estimators_
        depth = max(1, max(int(t.tree_.max_depth) for t in trees))
        inner, leaves = 2 ** depth - 1, 2 ** depth
        # Every tree's nodes in one numbering: tree t's node i is offset[t] + i.
        sizes = np.array([t.tree_.node_count for t in trees])
        offset = np.r_[0, np.cumsum(sizes)[:-1]]
        tree = np.repeat(np.arange(len(trees)), sizes)
        left = np.concatenate([t.tree_.children_left for t in trees]).astype("int64")
        right = np.concatenate([t.tree_.children_right for t in trees]).astype("int64")
        leaf = left == -1
        left, right = left + offset[tree], right + offset[tree]
        # Each node's slot in its complete tree and its level, a level at a time.
        slot = np.zeros(len(tree), dtype="int64")
        level = np.zeros(len(tree), dtype="int64")
        frontier = offset
        while len(frontier):
            frontier = frontier[~leaf[frontier]]
            for child, step in ((left[frontier], 1), (right[frontier], 2)):
                slot[child] = 2 * slot[frontier] + step
                level[child] = level[frontier] + 1
            frontier = np.concatenate([left[frontier], right[frontier]])
        # A tree fitted on a subset of the features numbers them within the subset.
        columns = np.asarray(forest.estimators_features_, dtype="int64")
        local = np.concatenate([t.tree_.feature for t in trees]).astype("int64")
        split = ~leaf
        feature = np.zeros((len(trees), inner), dtype="int64")
        threshold = np.full((len(trees), inner), np.inf)
        missing_left = np.ones((len(trees), inner), dtype="bool")
        at = (tree[split], slot[split])
        feature[at] = columns[tree[split], local[split]]
        threshold[at] = np.concatenate([t.tree_.threshold for t in trees])[split]
        missing_left[at] = np.concatenate([t.tree_.missing_go_to_left
                                           for t in trees]).astype(bool)[split]
        # Pass-through nodes always go left: a leaf's credit sits in the leftmost slot
        # below it.
        leaf_depth = np.zeros((len(trees), leaves))
        credit = np.concatenate([np.asarray(d, dtype="float64") + a - 1.0 for d, a in
                                 zip(forest._decision_path_lengths,
                                     forest._average_path_length_per_tree, strict=True)])
        leaf_depth[tree[leaf], (slot[leaf] + 1) * 2 ** (depth - level[leaf]) - 1 - inner] \
            = credit[leaf]
        return cls(depth, feature, _float32_below(threshold), missing_left, leaf_depth)

    def depth_sums(self, X: np.ndarray) -> np.ndarray:
        """Per row of ``X`` (float32, any layout), the sum over trees of its leaf depth:
        the compiled kernel's for many rows, numpy's (the same bits) for a few."""
        if len(X) <= SMALL_ROWS and KERNEL not in sys.modules:
            return self._numpy_depth_sums(X)
        from detection.forest_kernel import BLOCK_ROWS, depth_sums

        out = np.zeros(len(X), dtype="float64")
        depth_sums(X, self.depth, self.feature, self.threshold, self.missing_left,
                   self.leaf_depth, BLOCK_ROWS, bool(np.isnan(X).any()), out)
        return out

    def _numpy_depth_sums(self, X: np.ndarray) -> np.ndarray:
        """The kernel's walk in numpy: every row through every tree a level at a time,
        the same float32 comparison and NaN rule, the leaf depths added in tree order."""
        trees = np.arange(self.feature.shape[0])[:, None]
        rows = np.arange(len(X))[None, :]
        nodes = np.zeros((len(trees), len(X)), dtype="int64")
        for _ in range(self.depth):
            value = X[rows, self.feature[trees, nodes]]
            left = np.where(np.isnan(value), self.missing_left[trees, nodes],
                            value <= self.threshold[trees, nodes])
            nodes = 2 * nodes + 2 - left
        credit = self.leaf_depth[trees, nodes - self.feature.shape[1]]
        out = np.zeros(len(X), dtype="float64")
        for tree in credit:  # one tree after another, as scikit-learn adds them
            out += tree
        return out


def distinct_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct rows of ``X`` (float32) and each row's place among them, when rows
    repeat enough that walking each distinct one once pays (login features, mostly 0/1
    flags: a million logins hold a few thousand distinct rows); None when a sample of
    evenly spaced rows is mostly distinct (sensor features), or ``X`` is small.

    Rows are the same when their bits are (a NaN is a NaN): the trees cannot tell them
    apart. They are grouped by a 64-bit hash of their bits; every row is then checked
    against its group's first, and should two different rows ever share a hash, the
    answer is None, never a wrong group.
    """
    if len(X) < REPEAT_MIN_ROWS:
        return None
    sample = X[:: len(X) // REPEAT_SAMPLE]
    if len(np.unique(_row_hashes(sample))) > REPEAT_SHARE * len(sample):
        return None
    import pandas as pd

    codes, _ = pd.factorize(_row_hashes(X))
    # Groups are numbered as they first appear: the running maximum steps up at each
    # group's first row.
    first = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
    rows = X[first]
    for column in range(X.shape[1]):
        if not np.array_equal(X[:, column].view(np.uint32),
                              rows[:, column].view(np.uint32)[codes]):
            return None
    return rows, codes


def _row_hashes(X: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's bits, a column at a time (no copy of ``X``)."""
    hashes = np.zeros(len(X), dtype=np.uint64)
    for column in range(X.shape[1]):
        hashes ^= X[:, column].view(np.uint32).astype(np.uint64)
        hashes *= np.uint64(0x9E3779B97F4A7C15)  # wraps: a multiplicative hash
        hashes ^= hashes >> np.uint64(29)
    return hashes


def _float32_below(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 at or below each float64 threshold.

    For a float32 value v, ``v <= t`` exactly when ``v <= _float32_below(t)``: the walk
    compares in float32 and still takes scikit-learn's branch every time.
    """
    with np.errstate(over="ignore"):  # beyond float32: inf, stepped back just below
        below = threshold.astype(np.float32)
    over = below.astype(np.float64) > threshold
    below[over] = np.nextafter(below[over], np.float32(-np.inf))
    return below
