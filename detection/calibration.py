"""Map raw detector scores to the 0–100 anomaly score and severities.

The map is a logistic curve anchored on the baseline: the flag threshold scores 50,
the median baseline row scores 10, and the top 5% of the flagged baseline rows score
95 and above ("critical"; where ties make that impossible, the most anomalous row
scores 97). A baseline of normal history has no anomalous rows: there, 97 lies as far
above the threshold as the median lies below it. It is continuous
and strictly increasing, so the detector's ranking is kept, and it makes runs scored
by different detectors comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FLAG_SCORE = 50.0
MEDIAN_SCORE = 10.0
MAX_SCORE = 97.0
# Lower bounds of each severity on the 0–100 scale; flagged rows start at FLAG_SCORE.
CRITICAL_SCORE = 95.0
# The most a row scores while its entity's history is too short to judge it (its
# learning period): high, never critical.
LEARNING_CEILING = CRITICAL_SCORE - 0.01
SEVERITY_BANDS = (("critical", CRITICAL_SCORE), ("high", 85.0), ("medium", 70.0),
                  ("low", FLAG_SCORE))
CRITICAL_SHARE = 0.05  # of the baseline's flagged rows, the top share that is "critical"
SEVERITIES = ("none", "low", "medium", "high", "critical")


def _logit(score: float) -> float:
    """Logistic units between the flag score (50) and ``score``."""
    return abs(float(np.log(score / (100 - score))))


@dataclass(frozen=True)
class Calibration:
    threshold: float  # raw score that maps to FLAG_SCORE
    below: float      # raw units per logistic unit under the threshold
    above: float      # and over it

    @classmethod
    def fit(cls, train_scores: np.ndarray, threshold: float, *,
            normal: bool = False) -> Calibration:
        with np.errstate(over="ignore", invalid="ignore"):  # scores near 1e308
            fallback = float(np.std(train_scores)) or 1.0
        # Degenerate baselines (most rows tie at the threshold) fall back to the scores'
        # own spread: any positive slope keeps the map monotonic.
        gap = (threshold - float(np.median(train_scores))) or fallback
        below = gap / _logit(MEDIAN_SCORE)
        if normal:
            # History free of anomalies has no anomalous top row to anchor on (its top is
            # ordinary variation near the cut-off: rows just over it would all score
            # "critical"): 97 lies as far above the cut-off as the median lies below it.
            above = gap / _logit(MAX_SCORE)
        else:
            # The top CRITICAL_SHARE of the flagged baseline rows score "critical": attacks
            # come in bursts of near-equal rows at the top, and anchored on the maximum
            # most flags would be critical, which then ranks nothing.
            flagged = float(np.mean(train_scores > threshold))
            top = float(np.quantile(train_scores, 1 - CRITICAL_SHARE * flagged))
            if top > threshold:
                above = (top - threshold) / _logit(CRITICAL_SCORE)
            else:  # ties at the top: the most anomalous row scores 97
                above = ((float(np.max(train_scores)) - threshold) or fallback) / _logit(
                    MAX_SCORE)
        return cls(float(threshold), abs(float(below)), abs(float(above)))

    def transform(self, raw: np.ndarray) -> np.ndarray:
        delta = np.asarray(raw, dtype="float64") - self.threshold
        z = np.where(delta < 0, delta / self.below, delta / self.above)
        return 100.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def severity(scores: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``none`` below the flag score, then low / medium / high / critical by band."""
    band = np.zeros(len(scores), dtype="int8")
    for level, (_, bound) in enumerate(reversed(SEVERITY_BANDS), start=1):
        band[scores > bound if bound == FLAG_SCORE else scores >= bound] = level
    return pd.array(SEVERITIES, dtype="str").take(band)
