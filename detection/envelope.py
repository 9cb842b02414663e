"""Rows far outside the baseline on any one feature, whatever the forest says.

IsolationForest isolates a row with random splits over all features. A row far out on
one feature of many is isolated no faster than a row just beyond the baseline's edge,
so its score saturates: a stuck sensor (variability 40 times below usual) or a slow
drift (15 standard deviations above the usual level at that hour) can score under the
cut-off while ordinary busy-hour rows score over it. The envelope catches those rows:
per feature, the baseline's median and the distances above and below it within which
all but ``EDGE_SHARE`` of its rows lie. A row's *reach* is its largest distance in those
units: 1 at the baseline's edge, 2 twice as far out. The flag reach (``REACH_FLAG``)
scores the flag score, farther out scores more, and the anomaly score is the larger of
the forest's and the envelope's. In a model of normal history the flag reach rises to
the reach that only ``FLAG_SHARE`` of the baseline's own rows exceed, where more do
(many features, heavy tails, metrics that move in steps). Below the flag reach the
envelope says nothing: there the forest's score ranks the rows (a row's largest reach
over many features, each judged alone, reorders ordinary rows by chance: ODDS' tabular
sets lost 0.006 of ROC-AUC).

Some features are evidence on their own (a journey no airliner makes): a featurizer
names them ``decisive``, and a row above the baseline's largest value of one reaches
one past the flag reach (a score of 90, "high") whatever its edges. A model of clean
history, where the feature was never up, flags it. A file scored on its own is its own
baseline, anomalies included: there the ceiling is the largest value of all but its
rarest ``EDGE_SHARE`` of rows, so a decisive value a few rows have flags them and a
common one is left to the forest (whose 256-row samples rarely hold one of a handful of
rare rows, and so never split on them).

The same edges measure drift: a file from the baseline's source has about 2 x
``EDGE_SHARE`` of its rows outside them on any one feature; ten times that on some
feature says the model no longer describes the source (``Drift.stale``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detection.calibration import MEDIAN_SCORE

EDGE_SHARE = 0.005  # on each side
# A model of normal history: the reach that flags rises to the one its baseline's rows
# exceed this seldom. With dozens of metrics, each feature judged alone, a baseline of a
# day's minutes had 2% of its own rows twice beyond some edge (SMD's machine-1-1): they
# flagged every tenth later normal row, four times the forest's share.
FLAG_SHARE = 0.001
FIT_ROWS = 100_000
REACH_FLAG = 2.0
# The envelope's score on the 0-100 scale: a logistic curve through (1, MEDIAN_SCORE)
# and (REACH_FLAG, 50, the flag score), like the forest's calibration; a raised flag
# reach moves the curve along with it (50 there, 90 one further).
_SLOPE = np.log((100 - MEDIAN_SCORE) / MEDIAN_SCORE) / (REACH_FLAG - 1)


def _column_quantiles(X: np.ndarray, q, **options) -> np.ndarray:
    """Each column's quantiles ``q``, missing values left out: one call of np.quantile
    when none is missing (np.nanquantile works a column at a time: 3 s for a file of
    5,000 metrics), the same numbers."""
    quantile = np.nanquantile if np.isnan(X).any() else np.quantile
    return quantile(X, q, axis=0, **options)


class Envelope:
    """Per-feature edges of a baseline; ``score`` rates how far beyond them a row lies.

    A side of a feature on which the baseline barely varies (a novelty indicator that is
    0 for 99.5% of rows, a constant) has no edge: how rare such a value is remains the
    forest's to judge.
    """

    def fit(self, X: np.ndarray, decisive: list[bool] | None = None, *,
            normal: bool = True) -> Envelope:
        """``decisive``: per feature, whether a value above the baseline's largest flags;
        ``normal=False`` (the baseline is the file to be scored, anomalies and all): above
        the largest of all but its rarest ``EDGE_SHARE`` of rows, so a decisive value
        only a few of the file's rows have flags them, and a common one is left to the
        forest."""
        # Above FIT_ROWS rows an evenly spaced sample stands in for all (the 0.5% edges
        # of 100,000 rows are 500 rows deep): a million rows' quantiles took 1.3 s. The
        # ceilings of decisive features come from every row.
        self.ceiling_ = np.full(X.shape[1], np.inf)
        if decisive is not None and any(decisive):
            chosen = np.asarray(X[:, np.flatnonzero(decisive)], dtype="float64")
            self.ceiling_[np.flatnonzero(decisive)] = (
                np.nanmax(chosen, axis=0, initial=-np.inf) if normal
                else _column_quantiles(chosen, 1 - EDGE_SHARE, method="lower"))
        X = np.asarray(X[:: max(1, len(X) // FIT_ROWS)], dtype="float64")
        low, self.center_, high = _column_quantiles(X, [EDGE_SHARE, 0.5, 1 - EDGE_SHARE])
        # 1 / distance to each edge; 0 switches a side off.
        with np.errstate(divide="ignore"):
            self.up_ = np.where(high > self.center_, 1.0 / (high - self.center_), 0.0)
            self.down_ = np.where(low < self.center_, 1.0 / (self.center_ - low), 0.0)
        self.flag_ = REACH_FLAG
        if normal:
            self.flag_ = max(REACH_FLAG, float(np.quantile(self.reach(X), 1 - FLAG_SHARE)))
        return self

    @property
    def flag(self) -> float:
        """The reach from which a row is flagged (``REACH_FLAG`` in a model saved before
        it was fitted)."""
        return getattr(self, "flag_", REACH_FLAG)

    def reach(self, X: np.ndarray) -> np.ndarray:
        """Each row's largest distance from the baseline's median, in edge units."""
        reach = np.zeros(len(X), dtype=X.dtype)
        for j in np.flatnonzero((self.up_ > 0) | (self.down_ > 0)):  # one column at a time:
            column = X[:, j] - X.dtype.type(self.center_[j])          # no n x d copy
            np.fmax(reach, column * X.dtype.type(self.up_[j]), out=reach)  # NaN: no reach
            np.fmax(reach, column * X.dtype.type(-self.down_[j]), out=reach)
        for j in np.flatnonzero(np.isfinite(getattr(self, "ceiling_", ()))):  # saved earlier:
            above = X[:, j] > self.ceiling_[j]                                 # none
            reach[above] = np.maximum(reach[above], self.flag + 1)  # a score of 90
        return reach.astype("float64")

    def score(self, X: np.ndarray) -> np.ndarray:
        """The 0-100 score of each row's reach from the flag reach (the flag score) up;
        0 below it."""
        reach = self.reach(X)
        z = np.clip((reach - self.flag) * _SLOPE, -50, 50)
        return np.where(reach >= self.flag, 100.0 / (1.0 + np.exp(-z)), 0.0)

    def outside(self, X: np.ndarray) -> np.ndarray:
        """Per feature, the share of rows beyond its edges (about 1% in the baseline)."""
        shares = np.zeros(X.shape[1])
        for j in np.flatnonzero((self.up_ > 0) | (self.down_ > 0)):
            column = X[:, j].astype("float64") - self.center_[j]
            shares[j] = np.count_nonzero((column * self.up_[j] > 1)
                                         | (-column * self.down_[j] > 1)) / max(len(X), 1)
        return shares


STALE_SHARE = 0.10    # ten times what the baseline itself has outside its edges
MIN_DRIFT_ROWS = 200  # fewer rows (an API body, a stream batch) cannot tell drift from chance


@dataclass(frozen=True)
class Drift:
    """How far a scored file lies from the model's baseline: per feature, the rows outside
    the baseline's edges; ``share`` and ``feature`` name the feature where most are."""

    outside: tuple[int, ...]
    names: tuple[str, ...]
    rows: int

    @classmethod
    def of(cls, envelope: Envelope, X: np.ndarray, names: list[str]) -> Drift:
        counts = np.rint(envelope.outside(X) * len(X)).astype(int)
        return cls(tuple(counts.tolist()), tuple(names), len(X))

    @classmethod
    def combine(cls, parts: list[Drift]) -> Drift:
        """One file's drift from the drifts of its pieces."""
        counts = np.sum([p.outside for p in parts], axis=0)
        return cls(tuple(counts.tolist()), parts[0].names, sum(p.rows for p in parts))

    @property
    def share(self) -> float:
        return max(self.outside, default=0) / max(self.rows, 1)

    @property
    def feature(self) -> str:
        return self.names[int(np.argmax(self.outside))] if self.names else ""

    @property
    def judged(self) -> bool:
        """From ``MIN_DRIFT_ROWS`` rows up: an API body or a stream batch is too few to
        tell drift from chance."""
        return self.rows >= MIN_DRIFT_ROWS

    @property
    def stale(self) -> bool:
        return self.judged and self.share > STALE_SHARE

    def warning(self) -> str:
        return (f"{STALE_WARNING}: retrain it on recent normal history. {self.share:.0%} of "
                f"the rows lie outside its baseline's range on {self.feature} (about "
                f"{2 * EDGE_SHARE:.0%} would from the same source; stale above "
                f"{STALE_SHARE:.0%})")


STALE_WARNING = "the model is stale"
