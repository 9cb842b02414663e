"""Live detection that keeps learning: each reading judged by its entity's own recent past.

A model trained on a baseline knows that baseline. On a live stream the source moves on
(a level shift, a busier week, a new cycle) and such a model scores every row after the
first change as anomalous, for good. The live path scores sensor readings with a
*rolling-baseline tail detector* instead, which learns from every reading it has seen:

1. **Deviation.** Per entity and metric, a reading's distance from the median of the
   entity's previous ``WINDOW`` readings, in units of their robust spread (1.4826 times
   the median distance from that median; at least a tenth of their standard deviation,
   so a metric that sits still between rare steps still has a unit).
2. **Surprise.** Where that deviation lies in the tail of the entity's own last
   ``HISTORY`` deviations of the metric: 1 at their 90th percentile, 2 at the 99th, one
   more for each such step beyond (an exponential tail, so no two different readings tie
   at the top). A row's surprise is its largest over its metrics.
3. **Told once.** A surprise not larger by ``ECHO_MARGIN`` than one among the entity's
   previous ``QUIET`` rows is an echo of it, damped by ``ECHO`` and kept under the flag:
   a change is flagged where it starts (and where it grows by half a tail step), not on
   every row after.
4. **Learned.** The deviations of a new regime join the history and lift its tail; the
   median reaches a new level within ``WINDOW / 2`` readings. The new level is then the
   normal one, and its readings score low again.

The score is a logistic curve in log-surprise, 10 at surprise 1 and 50 (the flag score)
at ``FLAG_SURPRISE``, so severity bands keep their meaning; an entity still learning
(fewer than ``MIN_HISTORY`` deviations) is not flagged. Everything looks back only:
a stream's rows scored in one piece or in any split get the same scores, when each piece
comes with the state its predecessors left (:meth:`Learner.score`).
"""

from __future__ import annotations

from dataclasses import dataclass

import bottleneck as bn
import numpy as np
import pandas as pd

from detection.calibration import MEDIAN_SCORE
from detection.dataset import Dataset
from detection.errors import ParameterError
from detection.features.base import fmt

WINDOW = 600  # readings the usual level is the median of
HISTORY = 4000  # deviations the tail is measured in
QUIET = 150  # rows after a surprise in which one not larger by ECHO_MARGIN is an echo
ECHO = 0.3  # an echo's surprise is damped by this, and never flags:
ECHO_CAP = 0.9  # it stays under this share of the flag's
# A change is told again only when it grows by half a tail step: a trend's creeping new
# maxima (each a little above the last) are echoes, not new incidents.
ECHO_MARGIN = 0.5
MIN_WINDOW = 12  # readings before a level is known at all
MIN_HISTORY = 100  # deviations before an entity's readings may be flagged
FLAG_SURPRISE = 3.0  # one tail step beyond the 99th percentile of the entity's deviations
SPREAD_SHARE = 0.1  # of the standard deviation: the least unit a deviation is counted in
_SLOPE = np.log((100 - MEDIAN_SCORE) / MEDIAN_SCORE) / np.log(FLAG_SURPRISE)
FEW = 32  # rows of an entity in a piece ranked window by window
MODEL = "model score"  # the column of a trained model's scores, when the learner takes them

METHOD = (f"rolling baseline: each reading against the median and spread of its entity's "
          f"previous {WINDOW} readings, ranked in the tail of its last {HISTORY} "
          f"deviations; a change is flagged where it starts and then learned")


@dataclass(frozen=True)
class Learned:
    """A piece's scores and what explains them (one entry per row, in the piece's order)."""

    scores: np.ndarray  # 0-100
    metric: np.ndarray  # index of the column with the largest surprise (-1: none)
    level: np.ndarray  # index of the metric (not the model's score) with the largest one
    usual: np.ndarray  # that metric's median over the window
    spread: np.ndarray  # and its robust spread


def _score(surprise: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        z = _SLOPE * (np.log(surprise) - np.log(FLAG_SURPRISE))
    return 100.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def _shifted(values: np.ndarray) -> np.ndarray:
    return np.r_[np.nan, values[:-1]]


def _moving(func, values: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Bottleneck's moving ``func``; a window longer than the values covers them all."""
    return func(values, min(window, len(values)), min_count=min(min_count, len(values)))


def _level(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The median and robust spread of the previous ``WINDOW`` readings, per row."""
    before = _shifted(values)
    median = _moving(bn.move_median, before, WINDOW, MIN_WINDOW)
    mad = _moving(bn.move_median, np.abs(before - median), WINDOW, MIN_WINDOW) * 1.4826
    std = _moving(bn.move_std, before, WINDOW, MIN_WINDOW)
    floor = 1e-9 * (1.0 + np.abs(median))
    return median, np.fmax(np.fmax(mad, SPREAD_SHARE * std), floor)


def _tail(deviation: np.ndarray, new: int) -> tuple[np.ndarray, np.ndarray]:
    """The 90th and 99th percentiles of the ``HISTORY`` deviations before each of the
    last ``new`` (NaN with fewer than ``MIN_HISTORY``). A few rows (a live batch) are
    ranked window by window: rolling over the whole history would cost as much for one
    row as for thousands."""
    if new > FEW:
        before = pd.Series(_shifted(deviation)).rolling(HISTORY, min_periods=MIN_HISTORY)
        return (before.quantile(0.90).to_numpy()[-new:],
                before.quantile(0.99).to_numpy()[-new:])
    tails = np.full((new, 2), np.nan)
    for i, end in enumerate(range(len(deviation) - new, len(deviation))):
        window = deviation[max(0, end - HISTORY):end]
        if len(window) >= MIN_HISTORY:
            tails[i] = np.quantile(window, (0.90, 0.99))
    return tails[:, 0], tails[:, 1]


def _surprise(deviation: np.ndarray, new: int) -> np.ndarray:
    """The tail surprise of the last ``new`` deviations against the ones before each."""
    q90, q99 = _tail(deviation, new)
    d = deviation[-new:]
    q90 = np.fmax(q90, 1e-9)
    step = np.fmax(q99 - q90, SPREAD_SHARE * q90)
    surprise = np.where(d > q90, 1.0 + (d - q90) / step, d / q90)
    return np.where(np.isnan(q99), 0.0, surprise)  # still learning


class Learner:
    """Scores a stream of sensor readings piece by piece, learning as it goes.

    Parameters
    ----------
    metrics : sequence of str
        The metric columns, in the order the model knows them.
    judged : bool, default False
        Each row comes with a trained model's score too (:data:`MODEL`): its surprise is
        where that score lies in the tail of the entity's recent ones. The model knows
        what levels cannot show (the usual for the hour, a sensor gone still, a slow
        drift); its own recent scores tell when what it flags has become the normal.
    """

    def __init__(self, metrics, judged: bool = False):
        self.metrics = list(metrics)
        if not self.metrics:
            raise ParameterError("the learner needs at least one metric")
        self.columns = [*self.metrics, MODEL] if judged else list(self.metrics)

    def score(self, dataset: Dataset, state: dict | None,
              judged: np.ndarray | None = None) -> tuple[Learned, dict]:
        """Score ``dataset``'s rows after the ones ``state`` holds (None: none yet),
        with the trained model's scores ``judged`` when the learner takes them; returns
        their scores and the state to score the next piece with: per entity, its last
        readings (``values``), deviations and surprises, as many as the next rows look back at (a
        spread is the median of distances from medians that each look back a window, so
        its readings look back two windows)."""
        state = dict(state or {})
        values = dataset.metrics[self.metrics].to_numpy(dtype="float64")
        if MODEL in self.columns:
            values = np.column_stack([values, judged])
        entity = (np.full(len(dataset), "", dtype=object) if dataset.entity is None
                  else dataset.entity.astype(str).to_numpy(dtype=object))
        order = np.lexsort((dataset.time.to_numpy(), entity))
        n = len(dataset)
        learned = Learned(np.zeros(n), np.full(n, -1), np.full(n, -1), np.full(n, np.nan),
                          np.full(n, np.nan))
        for name in pd.unique(entity[order]):
            rows = order[entity[order] == name]
            state[name] = self._entity(state.get(name), values[rows], rows, learned)
        return learned, state

    def _entity(self, before: dict | None, values: np.ndarray, rows: np.ndarray,
                learned: Learned) -> dict:
        new, m = values.shape
        if before is None:
            before = {"values": np.empty((0, m)), "deviations": np.empty((0, m)),
                      "surprise": np.empty(0)}
        surprise = np.zeros((new, m))
        deviations = np.empty((new, m))
        usual, spread = np.empty((new, m)), np.empty((new, m))
        series = np.concatenate([before["values"], values])
        for j, metric in enumerate(self.columns):
            if metric == MODEL:  # a score: the higher, the more unusual already
                usual[:, j], spread[:, j] = np.nan, np.nan
                deviations[:, j] = values[:, j]
            else:
                median, unit = _level(series[-(new + 2 * WINDOW):, j])
                usual[:, j], spread[:, j] = median[-new:], unit[-new:]
                deviations[:, j] = np.nan_to_num(np.abs(values[:, j] - usual[:, j])
                                                 / spread[:, j])
        history = np.concatenate([before["deviations"], deviations])
        for j in range(m):
            surprise[:, j] = _surprise(history[-(new + HISTORY):, j], new)
        top = surprise.max(axis=1)
        earlier = np.r_[before["surprise"], top]
        recent = _moving(bn.move_max, _shifted(earlier), QUIET, 1)[-new:]
        echo = np.fmin(top * ECHO, ECHO_CAP * FLAG_SURPRISE)
        told = np.where(top > np.nan_to_num(recent, nan=0.0) + ECHO_MARGIN, top, echo)
        pick = surprise.argmax(axis=1)
        best = surprise[:, :len(self.metrics)].argmax(axis=1)
        at = np.arange(new)
        learned.scores[rows] = _score(told)
        learned.metric[rows] = np.where(top > 0, pick, -1)
        learned.level[rows] = np.where(surprise[at, best] > 0, best, -1)
        learned.usual[rows], learned.spread[rows] = usual[at, best], spread[at, best]
        return {"values": series[-(2 * WINDOW + 1):], "deviations": history[-(HISTORY + 1):],
                "surprise": earlier[-QUIET:]}

    def reasons(self, dataset: Dataset, learned: Learned, rows: np.ndarray,
                model_reasons: np.ndarray | None = None) -> list[str]:
        """Plain words for the rows ``rows`` (positions): the metric that made each
        unusual, with its reading against the usual level it was judged by; where the
        trained model's score did, the model's reasons (``model_reasons``, per row)."""
        texts = []
        for row in rows:
            j = learned.metric[row]
            if j >= 0 and self.columns[j] == MODEL and model_reasons is not None \
                    and model_reasons[row]:
                texts.append(str(model_reasons[row]))
                continue
            if j < 0 or self.columns[j] == MODEL:  # the best level's words instead
                j = learned.level[row]
            if j < 0:
                texts.append("")
                continue
            metric = self.metrics[j]
            actual = float(dataset.metrics[metric].iloc[row])
            usual, spread = float(learned.usual[row]), float(learned.spread[row])
            word = "above" if actual > usual else "below"
            texts.append(f"{metric} {fmt(actual)}, {word} its recent usual {fmt(usual)} "
                         f"± {fmt(spread)} (median of the previous {WINDOW} readings)")
        return texts
