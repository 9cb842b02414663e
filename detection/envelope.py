"""Rows far outside the baseline on any one feature, whatever the forest says.

IsolationForest isolates a row with random splits over all features. A row far out on
one feature of many is isolated no faster than a row just beyond the baseline's edge,
so its score saturates: a stuck sensor (variability 40 times below usual) or a slow
drift (15 standard deviations above the usual level at that hour) can score under the
cut-off while ordinary busy-hour rows score over it. The envelope catches those rows:
per feature, the baseline's median and the distances above and below it within which
all but ``EDGE_SHARE`` of its rows lie. A row's *reach* is its largest distance in those
units: 1 at the baseline's edge, 2 twice as far out. Reach ``REACH_FLAG`` scores the
flag score, and the anomaly score is the larger of the forest's and the envelope's.
"""

from __future__ import annotations

import numpy as np

from detection.calibration import MEDIAN_SCORE

EDGE_SHARE = 0.005  # on each side
REACH_FLAG = 2.0
# The envelope's score on the 0-100 scale: a logistic curve through (1, MEDIAN_SCORE)
# and (REACH_FLAG, 50, the flag score), like the forest's calibration.
_SLOPE = np.log((100 - MEDIAN_SCORE) / MEDIAN_SCORE) / (REACH_FLAG - 1)


class Envelope:
    """Per-feature edges of a baseline; ``score`` rates how far beyond them a row lies.

    A side of a feature on which the baseline barely varies (a novelty indicator that is
    0 for 99.5% of rows, a constant) has no edge: how rare such a value is remains the
    forest's to judge.
    """

    def fit(self, X: np.ndarray) -> Envelope:
        X = np.asarray(X, dtype="float64")
        self.center_ = np.nanmedian(X, axis=0)
        low, high = np.nanquantile(X, [EDGE_SHARE, 1 - EDGE_SHARE], axis=0)
        # 1 / distance to each edge; 0 switches a side off.
        with np.errstate(divide="ignore"):
            self.up_ = np.where(high > self.center_, 1.0 / (high - self.center_), 0.0)
            self.down_ = np.where(low < self.center_, 1.0 / (self.center_ - low), 0.0)
        return self

    def reach(self, X: np.ndarray) -> np.ndarray:
        """Each row's largest distance from the baseline's median, in edge units."""
        reach = np.zeros(len(X))
        for j in np.flatnonzero((self.up_ > 0) | (self.down_ > 0)):  # one column at a time:
            column = np.nan_to_num(X[:, j].astype("float64") - self.center_[j])  # no n x d copy
            np.maximum(reach, column * self.up_[j], out=reach)
            np.maximum(reach, -column * self.down_[j], out=reach)
        return reach

    def score(self, X: np.ndarray) -> np.ndarray:
        """The 0-100 score of each row's reach: ``REACH_FLAG`` scores the flag score."""
        z = np.clip((self.reach(X) - REACH_FLAG) * _SLOPE, -50, 50)
        return 100.0 / (1.0 + np.exp(-z))
