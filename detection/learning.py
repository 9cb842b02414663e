"""Live detection that keeps learning: each reading judged by its entity's own recent past.

A model trained on a baseline knows that baseline. On a live stream the source moves on
(a level shift, a busier week, a new cycle) and such a model scores every row after the
first change as anomalous, for good. The live path scores sensor readings with a
*rolling-baseline tail detector* instead, which learns from every reading it has seen:

1. **Deviation.** Per entity and metric, a reading's distance from the median of the
   entity's previous ``WINDOW`` readings, in units of their robust spread (1.4826 times
   the median distance from that median; at least a tenth of their standard deviation,
   so a metric that sits still between rare steps still has a unit, and at least
   ``LEAST_UNIT`` of the metric's robust spread in the model's baseline, so a window in
   which it sat quite still does not make its next small move an extreme: a server's
   counter idle for an hour then ticking once scored surprises of 10^12).
2. **Shape.** Per entity and metric, how unlike its earlier shapes the last ``SHAPE``
   readings move: their window, less its mean, against the windows of the previous
   ``REFERENCE`` readings, as the mean distance to the ``NEIGHBOURS`` nearest (a
   nearest-neighbour novelty, as KNN-CAD and similar detectors use). A wave that beats
   twice as fast within its usual range, a sensor that starts to jitter or a cycle that
   loses a step shows here, where no single level is unusual.
3. **Time of day.** Per entity, how far its readings lie outside the range they took
   around the same time on the previous ``DAYS`` days (the median of each day's least
   and of each day's largest reading within ``MATCH`` of that time), in units of each
   metric's robust spread, averaged over its metrics: a quiet holiday in a busy week, a
   night shift that does not stop or a daily job that does not run shows here, where
   neither the level of the last days nor any short shape is unusual. A range, not the
   one reading a day before: a job that runs ten minutes late leaves no quiet minute
   "unlike the day before". The range also *explains* a level: a reading is no more
   unusual than its distance beyond it (a nightly job's peak at its hour is routine;
   the same peak in the afternoon is not), and where a level would flag but for it, a
   trained model's score (alarmed by the same peak) flags no more than the levels.
   Times that go back (a stream started over on older rows) begin a new run; a reading
   is compared within its own.
4. **Surprise.** Where a deviation (or a novelty) lies in the tail of the entity's own
   last ``HISTORY`` ones of the same column: 1 at their 90th percentile, 2 at the 99th,
   one more for each such step beyond (an exponential tail, so no two different readings
   tie at the top). A level's and the time of day's step is at least ``LEAST_STEP``
   units, a shape's ``SHAPE_STEP`` of the metric's spread in the baseline: a history
   without a tail (a metric at one value for thousands of readings, or never outside
   its range for the hour) would otherwise count any later move in steps of nothing,
   and every such move would tie at the top score. A *record* counts ``RECORD`` times
   over: a level reading beyond every reading of the entity before it (since the
   model's baseline began) by ``RECORD_UNITS`` units. Bursts that come and go within the
   range a metric has shown are its routine, however far they lie from the recent
   level; new ground is not (a request count's 656 where its highest had been 381). A
   row's surprise is its largest over its columns.
5. **Told once.** A surprise not larger by ``ECHO_MARGIN`` than one among the entity's
   previous ``QUIET`` rows is an echo of it, damped by ``ECHO`` and kept under the flag:
   a change is flagged where it starts (and where it grows by half a tail step), not on
   every row after. A record is remembered by its plain surprise: it is told louder,
   and the rows after it are judged as after any other reading.
6. **Learned.** The deviations of a new regime join the history and lift its tail; the
   median reaches a new level within ``WINDOW / 2`` readings, a new shape is among
   the nearest ones after ``NEIGHBOURS`` of its kind, and a new daily routine is the
   usual one for its time of day after ``DAYS // 2 + 1`` days. The new level (or rhythm)
   is then the normal one, and its readings score low again.

The score is a logistic curve in log-surprise, 10 at surprise 1 and 50 (the flag score)
at ``FLAG_SURPRISE``, so severity bands keep their meaning; an entity still learning
(fewer than ``MIN_HISTORY`` deviations) is not flagged. Everything looks back only:
a stream's rows scored in one piece or in any split get the same scores, when each piece
comes with the state its predecessors left (:meth:`Learner.score`).
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import bottleneck as bn
import numpy as np
import pandas as pd

from detection.calibration import MEDIAN_SCORE
from detection.dataset import Dataset
from detection.errors import ParameterError
from detection.features.base import fmt
from detection.threads import THREADS

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
LEAST_UNIT = 0.5  # of the metric's robust spread in the model's baseline: the least unit too
LEAST_STEP = 0.5  # units: the least step of a level deviation's tail
SHAPE_STEP = 0.05  # of the metric's robust spread in the model's baseline: a shape's least step
RECORD = 4.0  # a new record's level surprise counts this many times over
RECORD_UNITS = 1.0  # a record goes beyond the farthest reading before by this many units
_SLOPE = np.log((100 - MEDIAN_SCORE) / MEDIAN_SCORE) / np.log(FLAG_SURPRISE)
FEW = 32  # rows of an entity in a piece ranked window by window
SHAPE = 5  # readings a reading's shape spans
REFERENCE = 1000  # earlier shapes of the metric each one is compared with
NEIGHBOURS = 5  # its novelty is the mean distance to this many nearest of them
LEAST_SHAPES = 4 * NEIGHBOURS  # whole earlier shapes before a novelty is told
DAYS = 3  # earlier days a reading is compared with at the same time of day
DAY = 86_400 * 10**9  # nanoseconds
MATCH = 30 * 60 * 10**9  # a reading this close to the time a day before is that time's
# Readings the time of day looks back at, at most: three days of readings a minute apart
# (a finer stream compares with the days these rows reach).
DAY_ROWS = 4_500
RANGES = 1 << 16  # ranges of readings whose extremes are found together, at most
# Readings a piece's rows look back at: a spread is the median of distances from medians
# that each look back a window; a shape's reference ends a shape before it starts.
LOOKBACK = max(2 * WINDOW, REFERENCE + 2 * SHAPE - 2)
# Rows of an entity a baseline's state depends on: the last QUIET surprises, each ranked
# among the HISTORY deviations before it, each of which looks back LOOKBACK readings (or
# DAY_ROWS, for its time of day).
MEMORY = QUIET + HISTORY + max(LOOKBACK, DAY_ROWS) + 1
THREAD_ROWS = 2_000  # readings of a metric a thread searches for shapes, at least
KERNEL = "detection.learning_kernel"
UNKNOWN_TIME = -(2**62)  # a reading's time not known (int64 nanoseconds, far from any)
MODEL = "model score"  # the column of a trained model's scores, when the learner takes them

METHOD = (f"rolling baseline: each reading against the median and spread of its entity's "
          f"previous {WINDOW} readings, the shape of its last {SHAPE} against those of "
          f"the previous {REFERENCE}, and the readings at the same time on the previous "
          f"{DAYS} days, ranked in the tail of its last {HISTORY}; a change is flagged "
          f"where it starts and then learned")


@dataclass(frozen=True)
class Learned:
    """A piece's scores and what explains them (one entry per row, in the piece's order)."""

    scores: np.ndarray  # 0-100
    metric: np.ndarray  # index of the column with the largest surprise (-1: none)
    level: np.ndarray  # index of the metric (not the model's score) with the largest one
    usual: np.ndarray  # that metric's median over the window
    spread: np.ndarray  # and its robust spread
    daily: np.ndarray  # the metric farthest from its time of day (-1: none known)
    low: np.ndarray  # the least of its usual range at that time on the previous days
    high: np.ndarray  # and the largest
    beyond: np.ndarray  # where the level metric set a record: the farthest reading before


def _score(surprise: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        z = _SLOPE * (np.log(surprise) - np.log(FLAG_SURPRISE))
    return 100.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def _shifted(values: np.ndarray) -> np.ndarray:
    return np.r_[np.nan, values[:-1]]


def _moving(func, values: np.ndarray, window: int, min_count: int) -> np.ndarray:
    """Bottleneck's moving ``func``; a window longer than the values covers them all."""
    return func(values, min(window, len(values)), min_count=min(min_count, len(values)))


def _level(values: np.ndarray, least: float) -> tuple[np.ndarray, np.ndarray]:
    """The median and robust spread of the previous ``WINDOW`` readings, per row; the
    spread at least ``least``."""
    before = _shifted(values)
    median = _moving(bn.move_median, before, WINDOW, MIN_WINDOW)
    mad = _moving(bn.move_median, np.abs(before - median), WINDOW, MIN_WINDOW) * 1.4826
    std = _moving(bn.move_std, before, WINDOW, MIN_WINDOW)
    floor = np.fmax(1e-9 * (1.0 + np.abs(median)), least)
    return median, np.fmax(np.fmax(mad, SPREAD_SHARE * std), floor)


def _tail(deviation: np.ndarray, new: int) -> tuple[np.ndarray, np.ndarray]:
    """The 90th and 99th percentiles of the ``HISTORY`` deviations before each of the
    last ``new`` (NaN with fewer than ``MIN_HISTORY``), interpolated as pandas' rolling
    quantile does. Many rows roll through the compiled kernel (an order-statistic tree,
    five times pandas' speed); a few (a live batch) are ranked window by window: rolling
    over the whole history would cost as much for one row as for thousands."""
    if new > FEW:
        from detection.learning_kernel import tails

        low, high = np.empty(new), np.empty(new)
        tails(np.ascontiguousarray(deviation, dtype="float64"), new, HISTORY, MIN_HISTORY,
              0.90, 0.99, low, high)
        return low, high
    tails = np.full((new, 2), np.nan)
    for i, end in enumerate(range(len(deviation) - new, len(deviation))):
        window = deviation[max(0, end - HISTORY):end]
        window = window[~np.isnan(window)]  # a column the state did not carry yet
        if len(window) >= MIN_HISTORY:
            tails[i] = np.quantile(window, (0.90, 0.99))
    return tails[:, 0], tails[:, 1]


def _surprise(deviation: np.ndarray, new: int, least: float,
              distances: np.ndarray | None = None) -> np.ndarray:
    """Where the last ``new`` deviations (or ``distances``: other distances of those
    rows, one column each) lie in the tail of the deviations before each, in tail steps
    of at least ``least``."""
    q90, q99 = _tail(deviation, new)
    d = deviation[-new:] if distances is None else distances
    shape = (new,) + (1,) * (d.ndim - 1)  # a row's tail for each of its distances
    q90, q99 = np.fmax(q90, 1e-9).reshape(shape), q99.reshape(shape)
    step = np.fmax(np.fmax(q99 - q90, SPREAD_SHARE * q90), least)
    surprise = np.where(d > q90, 1.0 + (d - q90) / step, d / q90)
    return np.where(np.isnan(q99), 0.0, surprise)  # still learning


def _least_largest(values: np.ndarray) -> np.ndarray:
    """The least and the largest of each column of ``values`` (readings x metrics), as
    two rows (NaN where a column has none)."""
    if not len(values):
        return np.full((2, values.shape[1]), np.nan)
    return np.stack([np.fmin.reduce(values, axis=0), np.fmax.reduce(values, axis=0)])


def _least_largest_before(extremes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The least and the largest reading before each of ``values`` (readings x metrics),
    ``extremes`` (:func:`_least_largest` of the readings before them) included: 2 x readings x
    metrics."""
    return np.stack([np.fmin.accumulate(np.r_[extremes[:1], values[:-1]], axis=0),
                     np.fmax.accumulate(np.r_[extremes[1:], values[:-1]], axis=0)])


def _runs(times: np.ndarray) -> np.ndarray:
    """Where each run of ``times`` in order starts: a stream that starts over (a baseline
    scored again) or rows out of order begin a new one."""
    return np.r_[0, np.flatnonzero(np.diff(times) < 0) + 1]


def _day_ranges(times: np.ndarray, starts: np.ndarray,
                new: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of the last ``new`` of ``times`` (int64 nanoseconds, in runs beginning at
    ``starts``), the positions [first, stop) of the readings within ``MATCH`` of the same
    time on each of the previous ``DAYS`` days (days x new; empty where none), in its run
    of times in order, before it and among the ``DAY_ROWS`` readings before it."""
    at = np.arange(len(times) - new, len(times))
    run = np.searchsorted(starts, at, side="right") - 1
    first, stop = np.zeros((DAYS, new), dtype=np.int64), np.zeros((DAYS, new), dtype=np.int64)
    for r in np.unique(run):
        begin = starts[r]
        end = starts[r + 1] if r + 1 < len(starts) else len(times)
        mine = run == r
        rows = at[mine]
        for day in range(1, DAYS + 1):
            target = times[rows] - day * DAY
            a = begin + np.searchsorted(times[begin:end], target - MATCH)
            b = begin + np.searchsorted(times[begin:end], target + MATCH, side="right")
            a, b = np.fmax(a, rows - DAY_ROWS), np.fmin(b, rows)
            first[day - 1, mine], stop[day - 1, mine] = a, np.fmax(a, b)
    return first, stop


def _extremes(column: np.ndarray, first: np.ndarray,
              stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least and the largest reading of ``column`` in each [first, stop) (NaN where
    none is known), from tables of the extremes over runs of 1, 2, 4, ... readings, built
    ``RANGES`` ranges at a time (ranges in the order of the readings they follow, as one
    day's are: each part's tables span about as many readings as it has ranges)."""
    low, high = np.full(len(first), np.nan), np.full(len(first), np.nan)
    for part in range(0, len(first), RANGES):
        a, b = first[part:part + RANGES], stop[part:part + RANGES]
        some = np.flatnonzero(b > a)
        if not len(some):
            continue
        a, b = a[some], b[some]
        base = a.min()
        least, most = [column[base:b.max()]], [column[base:b.max()]]
        level = np.log2(b - a).astype(int)  # each range: two runs of 2**level readings
        for k in range(1, level.max() + 1):
            half = 1 << (k - 1)
            least.append(np.fmin(least[-1][:-half], least[-1][half:]))
            most.append(np.fmax(most[-1][:-half], most[-1][half:]))
        for k in np.unique(level):
            pick = level == k
            left, right = a[pick] - base, b[pick] - base - (1 << k)
            low[part + some[pick]] = np.fmin(least[k][left], least[k][right])
            high[part + some[pick]] = np.fmax(most[k][left], most[k][right])
    return low, high


def _median(values: np.ndarray) -> np.ndarray:
    """The median along the first axis, NaNs left out (NaN where all are), as numpy's
    nanmedian without its warning."""
    ordered = np.sort(values, axis=0)  # NaN last
    count = (~np.isnan(values)).sum(axis=0, keepdims=True)
    low = np.take_along_axis(ordered, np.clip((count - 1) // 2, 0, None), axis=0)
    high = np.take_along_axis(ordered, count // 2, axis=0)
    return np.where(count > 0, (low + high) / 2, np.nan)[0]


def _time_of_day(series: np.ndarray, times: np.ndarray, starts: np.ndarray,
                 new: int) -> tuple[np.ndarray, np.ndarray]:
    """The usual range of each metric of ``series`` (readings x metrics) at the time of
    each of the last ``new`` readings: the median over the previous ``DAYS`` days of each
    day's least and of each day's largest reading within ``MATCH`` of that time (new x
    metrics each; NaN where no day is known)."""
    first, stop = _day_ranges(times, starts, new)
    low, high = np.empty((2, DAYS, new, series.shape[1]))
    for j, column in enumerate(series.T):
        for day in range(DAYS):
            low[day, :, j], high[day, :, j] = _extremes(column, first[day], stop[day])
    return _median(low), _median(high)


def _novelty(series: np.ndarray, new: int) -> np.ndarray:
    """How unlike the earlier shapes of its metric each of the last ``new`` readings of
    ``series`` (readings x metrics) is, per metric.

    A reading's shape is the window of the ``SHAPE`` readings ending at it, less their
    mean (a level is the level columns' to judge); its novelty, the mean distance to the
    ``NEIGHBOURS`` nearest of the ``REFERENCE`` windows that end before it starts (0
    while it holds a missing reading or fewer than ``LEAST_SHAPES`` whole windows lie
    behind it). The compiled kernel searches more than ``FEW`` readings, as :func:`_tail`
    ranks them (metrics and parts of the rows in threads); numpy a few, unless the
    process has loaded the kernel already (the same bits either way)."""
    out = np.zeros((series.shape[1], new))
    if new > FEW or KERNEL in sys.modules:
        from detection.learning_kernel import novelty

        columns = [np.ascontiguousarray(column, dtype="float64") for column in series.T]
        first = len(series) - new
        bounds = np.linspace(first, len(series), max(1, min(THREADS, new // THREAD_ROWS)) + 1)
        bounds = bounds.round().astype(int)
        tasks = [(j, start, end) for j in range(len(columns))
                 for start, end in zip(bounds[:-1], bounds[1:], strict=True)]

        def search(task: tuple[int, int, int]) -> None:
            j, start, end = task
            novelty(columns[j][:end], start, SHAPE, REFERENCE, NEIGHBOURS, LEAST_SHAPES,
                    out[j, start - first:end - first])

        if len(tasks) > 1 and new * len(columns) > THREAD_ROWS:
            with ThreadPoolExecutor(min(THREADS, len(tasks))) as pool:
                list(pool.map(search, tasks))
        else:
            for task in tasks:
                search(task)
        return out.T
    for j, column in enumerate(series.T):
        if len(column) >= SHAPE:
            out[j] = _novelty_numpy(column, new)
    return out.T


def _novelty_numpy(series: np.ndarray, new: int) -> np.ndarray:
    """:func:`_novelty` of one metric, in numpy: the kernel's computation, reading by
    reading."""
    out = np.zeros(new)
    windows = np.lib.stride_tricks.sliding_window_view(series, SHAPE)
    whole = ~np.isnan(windows).any(axis=1)
    windows = windows - windows.mean(axis=1, keepdims=True)
    for i, t in enumerate(range(len(series) - new, len(series))):
        current, last = t - SHAPE + 1, t - 2 * SHAPE + 1
        if last < 0 or not whole[current]:
            continue
        earlier = windows[max(0, last - REFERENCE + 1):last + 1]
        earlier = earlier[whole[max(0, last - REFERENCE + 1):last + 1]]
        if len(earlier) >= LEAST_SHAPES:
            distance = np.sqrt(((windows[current] - earlier) ** 2).sum(axis=1))
            out[i] = np.sort(np.partition(distance, NEIGHBOURS - 1)[:NEIGHBOURS]).sum()
            out[i] /= NEIGHBOURS
    return out


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
    spreads : callable, optional
        An entity's name to each metric's robust spread in the model's baseline (the
        least unit is ``LEAST_UNIT`` of it); without, the window's own spread alone.
    """

    def __init__(self, metrics, judged: bool = False, spreads=None):
        self.metrics = list(metrics)
        if not self.metrics:
            raise ParameterError("the learner needs at least one metric")
        self.columns = [*self.metrics, MODEL] if judged else list(self.metrics)
        self.spreads = spreads or (lambda entity: np.zeros(len(self.metrics)))

    def state_after(self, dataset: Dataset, judged: np.ndarray | None = None) -> dict:
        """The state :meth:`score` leaves after ``dataset`` (a baseline) from none,
        scoring only each entity's last ``MEMORY`` rows: all that state looks back at."""
        return self.score(dataset, None, judged, last=MEMORY)[1]

    def score(self, dataset: Dataset, state: dict | None,
              judged: np.ndarray | None = None, last: int | None = None
              ) -> tuple[Learned, dict]:
        """Score ``dataset``'s rows after the ones ``state`` holds (None: none yet),
        with the trained model's scores ``judged`` when the learner takes them (only each
        entity's ``last`` rows, if given); returns their scores and the state to score
        the next piece with: per entity, its last readings and their times (``values``
        and ``times``: ``LOOKBACK`` of them, or the last ``DAYS`` days' up to
        ``DAY_ROWS``), deviations and surprises, as many as the next rows look back at."""
        state = dict(state or {})
        values = dataset.metrics[self.metrics].to_numpy(dtype="float64")
        if MODEL in self.columns:
            values = np.column_stack([values, judged])
        entity = (np.full(len(dataset), "", dtype=object) if dataset.entity is None
                  else dataset.entity.astype(str).to_numpy(dtype=object))
        stamps = dataset.time.to_numpy(dtype="datetime64[ns]")
        # Entities by name, each one's rows in time order (a stable sort: ties keep theirs).
        codes, names = pd.factorize(entity, sort=True)
        order = np.lexsort((stamps, codes))
        bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
        times = np.where(np.isnat(stamps), UNKNOWN_TIME, stamps.astype("int64"))
        n = len(dataset)
        learned = Learned(np.zeros(n), np.full(n, -1), np.full(n, -1), np.full(n, np.nan),
                          np.full(n, np.nan), np.full(n, -1), np.full(n, np.nan),
                          np.full(n, np.nan), np.full(n, np.nan))
        for code, name in enumerate(names):
            rows = order[bounds[code]:bounds[code + 1]]
            before = state.get(name)
            if last and len(rows) > last:
                if before is None:  # the rows left unscored still set the records
                    before = {"extremes": _least_largest(values[rows[:-last], :len(self.metrics)])}
                rows = rows[-last:]
            state[name] = self._entity(before, values[rows], times[rows], rows,
                                       learned, self.spreads(name))
        return learned, state

    def _entity(self, before: dict | None, values: np.ndarray, times: np.ndarray,
                rows: np.ndarray, learned: Learned, spreads: np.ndarray) -> dict:
        """Score one entity's rows (``spreads``: each metric's in the model's baseline)."""
        new, m = values.shape
        k = len(self.metrics)
        width = m + k + 1  # the columns, each metric's shape, then the time of day
        before = {"values": np.empty((0, m)), "deviations": np.empty((0, width)),
                  "surprise": np.empty(0), **(before or {})}
        past = before["deviations"]
        if past.shape[1] < width:  # saved before shapes were learned: they start now
            past = np.column_stack([past, np.full((len(past), width - past.shape[1]),
                                                  np.nan)])
        deviations = np.empty((new, width))
        usual, spread = np.empty((new, m)), np.empty((new, m))
        series = np.concatenate([before["values"], values])
        # A state saved before times were kept: its readings' times are not known.
        times = np.concatenate([before.get("times", np.full(len(before["values"]),
                                                             UNKNOWN_TIME)), times])
        for j, metric in enumerate(self.columns):
            if metric == MODEL:  # a score: the higher, the more unusual already
                usual[:, j], spread[:, j] = np.nan, np.nan
                deviations[:, j] = values[:, j]
            else:
                median, units = _level(series[-(new + 2 * WINDOW):, j],
                                       LEAST_UNIT * spreads[j])
                usual[:, j], spread[:, j] = median[-new:], units[-new:]
                deviations[:, j] = np.nan_to_num(np.abs(values[:, j] - usual[:, j])
                                                 / spread[:, j])
        # A novelty, like a score: the higher, the more unusual.
        deviations[:, m:m + k] = _novelty(series[-(new + LOOKBACK):, :k], new)
        # The time of day: how far each metric lies outside its usual range at that time
        # on the days before, in its units (NaN: not known), and their mean (one not
        # known counts 0).
        starts = _runs(times)
        low, high = _time_of_day(series[:, :k], times, starts, new)
        with np.errstate(invalid="ignore"):
            outside = np.maximum(np.maximum(low - values[:, :k], values[:, :k] - high), 0.0)
        outside /= spread[:, :k]
        off = np.nan_to_num(outside, nan=-1.0)
        deviations[:, m + k] = np.fmax(off, 0.0).mean(axis=1)
        history = np.concatenate([past, deviations])
        # The least tail step: a level's and the time of day's in the metrics' units, a
        # shape's in the metric's own terms; the model's score keeps its own tail's.
        least = [0.0 if column == MODEL else LEAST_STEP for column in self.columns]
        least += [*(SHAPE_STEP * spreads), LEAST_STEP]
        surprise, plain = np.empty((new, width)), np.empty((new, k))

        def rank(j: int) -> None:
            tail = history[-(new + HISTORY):, j]
            if j < k:  # a level: no more unusual than its distance beyond that range
                d = tail[-new:]
                plain[:, j], surprise[:, j] = _surprise(
                    tail, new, least[j], np.column_stack([d, np.fmin(d, outside[:, j])])).T
            else:
                surprise[:, j] = _surprise(tail, new, least[j])

        # Each column's tail on a thread of its own where the rows are many (the compiled
        # ranking leaves the GIL); a live batch's few rows rank faster in one.
        if new * width > THREAD_ROWS and new > FEW:
            with ThreadPoolExecutor(min(THREADS, width)) as pool:
                list(pool.map(rank, range(width)))
        else:
            for j in range(width):
                rank(j)
        # A record: a level's surprise counts RECORD times over where the reading goes
        # beyond every one before it by RECORD_UNITS; what later rows are judged against
        # (the told surprise below) stays its plain one. A state saved before records
        # were kept: the extremes of the readings it kept.
        extremes = (before["extremes"] if "extremes" in before
                    else _least_largest(before["values"][:, :k]))
        farthest = _least_largest_before(extremes, values[:, :k])
        with np.errstate(invalid="ignore", divide="ignore"):  # a spread of 0: any step is one
            units = np.fmax(values[:, :k] - farthest[1], farthest[0] - values[:, :k])
            record = units / spread[:, :k] >= RECORD_UNITS
        louder = np.where(record, RECORD, 1.0)
        surprise[:, :k] *= louder
        if MODEL in self.columns:  # where a level would flag but for its routine, the
            # model (alarmed by the same peak, as a rule) flags no more than the levels
            routine = ((plain >= FLAG_SURPRISE) & (surprise[:, :k] < FLAG_SURPRISE)).any(axis=1)
            j = self.columns.index(MODEL)
            surprise[:, j] = np.where(routine, np.fmin(surprise[:, j], surprise[:, :k].max(axis=1)),
                                      surprise[:, j])
        top = surprise.max(axis=1)
        heard = np.fmax((surprise[:, :k] / louder).max(axis=1), surprise[:, k:].max(axis=1))
        told_before = np.r_[before["surprise"], heard]
        recent = _moving(bn.move_max, _shifted(told_before), QUIET, 1)[-new:]
        echo = np.fmin(top * ECHO, ECHO_CAP * FLAG_SURPRISE)
        told = np.where(top > np.nan_to_num(recent, nan=0.0) + ECHO_MARGIN, top, echo)
        at = np.arange(new)
        # The reason: a level (or the model's score) that flags by itself, else the
        # largest surprise (a shape only where it alone stands out).
        plain = surprise[:, :m].argmax(axis=1)
        pick = np.where(surprise[at, plain] >= FLAG_SURPRISE, plain, surprise.argmax(axis=1))
        best = surprise[:, :len(self.metrics)].argmax(axis=1)
        learned.scores[rows] = _score(told)
        learned.metric[rows] = np.where(top > 0, pick, -1)
        learned.level[rows] = np.where(surprise[at, best] > 0, best, -1)
        learned.usual[rows], learned.spread[rows] = usual[at, best], spread[at, best]
        daily = off.argmax(axis=1)
        learned.daily[rows] = np.where(off[at, daily] >= 0, daily, -1)
        learned.low[rows], learned.high[rows] = low[at, daily], high[at, daily]
        above = values[at, best] > usual[at, best]
        learned.beyond[rows] = np.where(record[at, best], farthest[above.astype(int), at, best],
                                        np.nan)
        # Kept: what the next readings look back at (their run's days before, at most).
        first = starts[-1]
        within = len(times) - first - np.searchsorted(times[first:],
                                                      times[-1] - DAYS * DAY - MATCH)
        keep = max(LOOKBACK, min(DAY_ROWS, within)) + 1
        return {"values": series[-keep:], "times": times[-keep:],
                "deviations": history[-(HISTORY + 1):], "surprise": told_before[-QUIET:],
                "extremes": _least_largest(np.r_[extremes, values[:, :k]])}

    def reasons(self, dataset: Dataset, learned: Learned, rows: np.ndarray,
                model_reasons: np.ndarray | None = None) -> list[str]:
        """Plain words for the rows ``rows`` (positions): the metric that made each
        unusual, with its reading against the usual level it was judged by; where the
        trained model's score did, the model's reasons (``model_reasons``, per row)."""
        texts = []
        daily = len(self.columns) + len(self.metrics)  # the time of day's column
        for row in rows:
            j = learned.metric[row]
            if j == daily and learned.daily[row] >= 0:
                metric = self.metrics[learned.daily[row]]
                actual = float(dataset.metrics[metric].iloc[row])
                low, high = float(learned.low[row]), float(learned.high[row])
                texts.append(f"{metric} {fmt(actual)} at {dataset.time.iloc[row]:%H:%M}, "
                             f"{'above' if actual > high else 'below'} its range around "
                             f"that time on the previous {DAYS} days ({fmt(low)} to "
                             f"{fmt(high)})")
                continue
            if len(self.columns) <= j < daily:
                metric = self.metrics[j - len(self.columns)]  # a metric's shape
                texts.append(f"{metric} {fmt(float(dataset.metrics[metric].iloc[row]))}: "
                             f"its last {SHAPE} readings move unlike any stretch of its "
                             f"previous {REFERENCE:,}")
                continue
            if 0 <= j < len(self.columns) and self.columns[j] == MODEL \
                    and model_reasons is not None and model_reasons[row]:
                texts.append(str(model_reasons[row]))
                continue
            if not 0 <= j < len(self.columns) or self.columns[j] == MODEL:
                j = learned.level[row]  # the best level's words instead
            if j < 0:
                texts.append("")
                continue
            metric = self.metrics[j]
            actual = float(dataset.metrics[metric].iloc[row])
            usual, spread = float(learned.usual[row]), float(learned.spread[row])
            up = actual > usual
            record = (f"; a new {'high' if up else 'low'} (the {'highest' if up else 'lowest'}"
                      f" before: {fmt(float(learned.beyond[row]))})"
                      if np.isfinite(learned.beyond[row]) else "")
            texts.append(f"{metric} {fmt(actual)}, {'above' if up else 'below'} its recent "
                         f"usual {fmt(usual)} ± {fmt(spread)} (median of the previous {WINDOW} "
                         f"readings){record}")
        return texts
