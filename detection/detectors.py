"""Detectors: one contract, higher score = more anomalous.

Every detector has ``fit(X)`` (learns from a baseline), ``score_samples(X)`` (raw
scores, higher = more anomalous) and ``threshold(train_scores)`` (the raw score from
which a row is flagged), in the manner of PyOD's ``decision_scores_``/``threshold_``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from detection.errors import ParameterError
from detection.names import DETECTOR_NAMES
from detection.threads import THREADS

CHUNK_ROWS = 65_536
# A baseline of normal history: the cut-off rises to where the exponential tail fitted to
# its top TAIL_FIT of scores expects TAIL_SHARE x contamination of normal rows. Its
# top 1.5% are then ordinary variation, not anomalies; flagging them flags that share
# of every later normal file (2-3% with after-effects, against 0.5-1.2% with this rule
# on the trained-mode cases of bench/quality.py).
TAIL_FIT = 0.10
TAIL_SHARE = 0.5
# Each tree sees max_samples rows (256): 100 trees never use more than 25,600, so a
# random 100,000-row sample of a large baseline fits the same forest several times faster.
FIT_SAMPLE = 100_000
UNIT_ROWS = 10_000  # baseline rows (evenly spaced) that set the units of two scores


def _average_path_length(n: np.ndarray) -> np.ndarray:
    """Expected depth at which a search in a random binary tree of ``n`` rows ends: c(n)
    in Liu et al. (2008); 0 for one row, 1 for two."""
    n = np.asarray(n, dtype="float64")
    out = np.where(n == 2, 1.0, 0.0)
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def tail_cut(scores: np.ndarray, share: float) -> float:
    """The score that a share ``share`` of rows exceeds, by the exponential tail fitted
    to the top ``TAIL_FIT`` of ``scores`` (peaks over a threshold; the scale is their
    median excess / ln 2, so a few outliers in the baseline do not stretch it)."""
    start = float(np.quantile(scores, 1 - TAIL_FIT))
    excess = scores[scores > start] - start
    if excess.size == 0:
        return start
    scale = float(np.median(excess)) / np.log(2)
    return start + scale * np.log(TAIL_FIT / share)


def _units(scores: np.ndarray, contamination: float) -> tuple[float, float]:
    """A score's median and its distance to the score ``contamination`` of rows exceed
    (1 where they tie)."""
    mid, cut = np.quantile(scores, [0.5, 1 - contamination])
    return float(mid), float(cut - mid) or 1.0


class IsolationForestDetector:
    """IsolationForest on the profile's features.

    Parameters
    ----------
    contamination : float, default 0.015
        Share of the baseline rows above the flag threshold; only a cut-off, the
        forest itself is fitted without it. 1.5% balanced window recall (0.86) and
        flag precision (0.56) on NAB (bench/quality.py, over five seeds).
    n_estimators : int, default 100
    max_samples : int, default 256
    random_state : int, default 0
    neighbours : int, default 0
        With k > 0, a row's score is the larger of the forest's and its distance to the
        k nearest rows of a baseline sample (detection.neighbours), each in units of its
        own cut-off: 0 at the baseline's median, 1 where ``contamination`` of it lies
        above. The generic profile uses 10.
    n_jobs : int, default detection.threads.THREADS
        Threads used to score; the trees release the GIL.
    """

    name = "isolation_forest"

    def __init__(self, contamination: float = 0.015, n_estimators: int = 100,
                 max_samples: int = 256, random_state: int = 0, neighbours: int = 0,
                 n_jobs: int = THREADS):
        self.contamination = contamination
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state
        self.neighbours = neighbours
        self.n_jobs = n_jobs

    def get_params(self) -> dict:
        params = {"contamination": self.contamination, "n_estimators": self.n_estimators,
                  "max_samples": self.max_samples, "random_state": self.random_state}
        return {**params, "neighbours": self.neighbours} if self.neighbours else params

    def fit(self, X: np.ndarray) -> IsolationForestDetector:
        if not 0 < self.contamination <= 0.5:  # scikit-learn's range, (0, 0.5]
            raise ParameterError(
                "contamination must be more than 0 and at most 0.5 (share of baseline rows "
                f"flagged); got {self.contamination!r}"
            )
        if len(X) > FIT_SAMPLE:
            rng = np.random.default_rng(self.random_state)
            X = X[np.sort(rng.choice(len(X), FIT_SAMPLE, replace=False))]
        # Imported on first use: scikit-learn takes over a second to import (SciPy), and
        # reading, checking and featurizing a file need none of it (`vigil train`
        # imports it on a thread meanwhile).
        from sklearn.ensemble import IsolationForest

        # contamination="auto" keeps fit from scoring every training row a second time;
        # the threshold is taken from the scores the caller computes once anyway.
        forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(X)),
            contamination="auto",
            random_state=self.random_state,
        ).fit(X)
        self._keep(forest)
        if self.neighbours:
            from detection.neighbours import Neighbours

            self.near_ = Neighbours(self.neighbours, self.random_state).fit(X)
            # Each score's units from a sample of the baseline: its median and the score
            # that contamination of it exceeds.
            sample = X[:: max(1, len(X) // UNIT_ROWS)]
            self.units_ = [_units(score, self.contamination)
                           for score in (self._forest_scores(sample), self.near_.score(sample))]
        return self

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """The forest's score; with ``neighbours``, the larger of it and the distance to
        the nearest baseline rows, both in units of their cut-offs."""
        forest = self._forest_scores(X)
        if not getattr(self, "neighbours", 0):  # a model saved before neighbours
            return forest
        (f_mid, f_unit), (n_mid, n_unit) = self.units_
        return np.maximum((forest - f_mid) / f_unit, (self.near_.score(X) - n_mid) / n_unit)

    def _forest_scores(self, X: np.ndarray) -> np.ndarray:
        """2^(-mean path length / c(max_samples)), the paper's anomaly score.

        This is ``-IsolationForest.score_samples``, bit for bit (sklearn's sign says
        "more normal"; ours is flipped here, once), with the trees walked by a compiled
        kernel (detection.forest) over row chunks in ``n_jobs`` threads.
        """
        # Any layout: the kernel is compiled for each, and a feature frame's columns (an
        # F-order matrix) walk as fast as rows; a C-order copy would cost its size again.
        X = np.asarray(X, dtype=np.float32)
        from detection.forest import distinct_rows

        repeated = distinct_rows(X)
        if repeated is not None:  # each distinct row walked once
            rows, codes = repeated
            return self._walk(rows)[codes]
        return self._walk(X)

    def _walk(self, X: np.ndarray) -> np.ndarray:
        """:meth:`_forest_scores` of every row, in row chunks on ``n_jobs`` threads."""
        flat = self.flat_
        chunks = [X[i:i + CHUNK_ROWS] for i in range(0, len(X), CHUNK_ROWS)] or [X]
        if len(chunks) == 1:
            total = flat.depth_sums(X)
        else:
            with ThreadPoolExecutor(max(1, min(self.n_jobs, len(chunks)))) as pool:
                total = np.concatenate(list(pool.map(flat.depth_sums, chunks)))
        return 2.0 ** (-total / self.expected_depth_)

    def _keep(self, forest) -> None:
        """Keep what scoring needs of a fitted scikit-learn forest: its trees laid out
        for the kernel and the expected depth sum of a row, c(max_samples) a tree. A
        saved model then loads without scikit-learn (over a second to import) and scores
        bit for bit as the forest would."""
        from detection.forest import FlatForest  # numba: imported with the forest

        self.flat_ = FlatForest.of(forest)
        self.expected_depth_ = float(len(forest.estimators_) * _average_path_length(
            np.array([forest.max_samples_]))[0])

    def __setstate__(self, state: dict) -> None:
        """A model saved before December 2026 holds the scikit-learn forest itself."""
        forest = state.pop("forest_", None)
        self.__dict__.update(state)
        if forest is not None:
            self._keep(forest)

    def threshold(self, train_scores: np.ndarray, *, normal: bool = False) -> float:
        """The raw score above which a row is flagged: the one ``contamination`` of the
        baseline exceeds; for a ``normal`` baseline (history presumed free of anomalies)
        at least the score its fitted tail puts ``TAIL_SHARE`` x that share above."""
        cut = float(np.quantile(train_scores, 1 - self.contamination))
        if normal:
            cut = max(cut, tail_cut(train_scores, TAIL_SHARE * self.contamination))
        return cut


class ZScoreDetector:
    """The classic z-score: ``|x - mean| / std > multiplier`` on any column.

    Parameters
    ----------
    mean, std : float, optional
        Fixed mean and standard deviation for every column; learned from the
        baseline when omitted.
    multiplier : float, default 3.0
        How many standard deviations from the mean a value may lie before it is flagged.
    robust : bool, default False
        Learn the median and 1.4826 MAD instead of the mean and std (outliers in the
        baseline then do not widen the band).
    """

    def __init__(self, mean: float | None = None, std: float | None = None,
                 multiplier: float = 3.0, robust: bool = False):
        self.mean = mean
        self.std = std
        self.multiplier = multiplier
        self.robust = robust

    @property
    def name(self) -> str:
        return "robust_zscore" if self.robust else "zscore"

    def get_params(self) -> dict:
        return {"mean": self.mean, "std": self.std, "multiplier": self.multiplier,
                "robust": self.robust}

    def fit(self, X: np.ndarray) -> ZScoreDetector:
        if not self.multiplier > 0:
            raise ParameterError(f"multiplier must be positive; got {self.multiplier!r}")
        if self.std is not None and not self.std > 0:
            raise ParameterError(f"std must be positive; got {self.std!r}")
        X = np.asarray(X, dtype="float64")
        if self.robust:
            center = np.median(X, axis=0)
            scale = 1.4826 * np.median(np.abs(X - center), axis=0)
        else:
            # A value near 1e308 overflows the variance: the band becomes infinitely wide,
            # which is what the classic z-score says of such data (the robust one does not).
            with np.errstate(over="ignore", invalid="ignore"):
                center, scale = X.mean(axis=0), X.std(axis=0)
        self.center_ = np.full(X.shape[1], self.mean) if self.mean is not None else center
        if self.std is not None:
            scale = np.full(X.shape[1], self.std)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        return self

    def zscores(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype="float64") - self.center_) / self.scale_

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        return np.abs(self.zscores(X)).max(axis=1)

    def threshold(self, train_scores: np.ndarray, *, normal: bool = False) -> float:
        return float(self.multiplier)


DETECTORS = dict(zip(DETECTOR_NAMES, (
    IsolationForestDetector,
    ZScoreDetector,
    lambda **kw: ZScoreDetector(robust=True, **kw),
), strict=True))


def make_detector(name: str, **params) -> IsolationForestDetector | ZScoreDetector:
    """Build a detector by name with its parameters."""
    if name not in DETECTORS:
        raise ParameterError(
            f"detector must be one of {', '.join(DETECTORS)}; got {name!r}"
        )
    try:
        return DETECTORS[name](**params)
    except TypeError as exc:
        raise ParameterError(f"detector {name}: {exc}") from None
