"""Sensor features, per entity and metric, from the row and the rows before it.

For every metric: the level (standardised per entity), its deviation from the usual
level at that hour of day, a robust z-score against the preceding readings
(median/MAD), the step from the previous reading, the variability of the recent
window (the median change between readings: a stuck sensor has none) and the recent
median (a sustained drift). With ``RELATION_MIN_METRICS`` metrics or more, one more
per metric: how far its level lies from what the other metrics' levels imply, by the
relation they keep in the baseline (a principal-component fit), in its usual departures
from it: a fault that moves a few of many correlated metrics, none of them far on its
own.

The window statistics are medians: one spike moves a window's mean and standard
deviation for as long as it stays in the window (30 readings of flags after it),
its medians not at all.
"""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from statistics import NormalDist

import bottleneck as bn
import numpy as np
import pandas as pd

from detection.calibration import LEARNING_CEILING
from detection.dataset import Dataset
from detection.errors import ModelMismatchError
from detection.features.base import (
    STATS_SAMPLE,
    FeatureSet,
    as_float32,
    fmt,
    level_phrase,
    rank_features,
    robust_center_scale,
    robust_centers_scales,
    sampled,
    trained_metrics,
)
from detection.threads import THREADS

KINDS = ("level", "time_of_day", "vs_recent", "step", "spread", "trend", "repeat", "relation")
# How each kind reads in a message about a feature (a model's drift).
KIND_WORDS = {"level": "level", "time_of_day": "level for the hour", "trend": "recent level",
              "vs_recent": "change vs recent readings", "step": "step between readings",
              "spread": "variability", "repeat": "repeated readings",
              "relation": "relation to the other metrics"}
FAMILY = {"level": "level", "time_of_day": "level", "trend": "level", "vs_recent": "change",
          "step": "change", "spread": "spread", "repeat": "spread", "relation": "relation"}
MIN_HISTORY = 5        # readings before the recent-window features say anything
SPREAD_FLOOR = 0.01    # in per-entity standard units: keeps log(spread) finite when stuck
LOCAL_FLOOR = 0.1      # smallest recent MAD, so a quiet window does not inflate z
MIN_DAYS_FOR_TOD = 2   # fewer days cannot tell a daily cycle from a trend
# A baseline's usual range runs from its values' USUAL_EDGE quantile to their
# 1 - USUAL_EDGE quantile (1st to 99th percentile).
USUAL_EDGE = 0.01
# The usual range's edge lies this many standard deviations from a normal distribution's
# median (2.33). An hour's spread is at least the width of its usual range in these
# units (4.65 of them): an hour that holds two states (a machine stopping at 22:00 give
# or take ten minutes) has the small MAD of the one it mostly holds, and the other
# state, seen on many days, read as dozens of them out.
EDGE_UNITS = NormalDist().inv_cdf(1 - USUAL_EDGE)
HOUR_RANGE_UNITS = 2 * EDGE_UNITS
# A level's usual range in reasons (quoted, and the unit they are ranked in): the median
# of its usual ranges over this many consecutive stretches of the baseline, so that a
# state it keeps coming back to (a machine off every night) counts as usual and one long
# stretch (a failure in a file scored on its own) does not.
RECURRENT_PARTS = 10
RANGED = ("level", "trend")  # the feature kinds a reason quotes a usual level for
DAILY = 0.25           # share of a metric's spread the hour must explain to be a daily cycle
# A reading repeated more often in a row than twice the baseline's 99th percentile of
# such runs, plus this many, counts as a repeat (quantised series repeat by nature).
MIN_REPEATS = 3
FLAT_SHARE = 0.1       # recent variation below this share of the usual reads as "flat"
RELATION_MIN_METRICS = 5  # fewer metrics: each one's own features say it all
RELATION_VARIANCE = 0.9   # share of the baseline's variance the kept components explain
# Readings this many times more (or less) often than in the baseline: the window spans
# another stretch of time than the model learned from, and the file is told so.
PACE_RATIO = 1.5
# A file's daily cycle matching the baseline's this many times better a few hours on
# than as it stands: its clock is told to differ (another time zone, a clock change).
CLOCK_BETTER = 2
# Bumped when the features change meaning: a model saved by an earlier Vigil then asks
# to be trained again rather than scoring with features it was not fitted on.
# 2: window variability and level from medians (were the std and the mean).
FEATURES_VERSION = 2
# Features are computed over pieces of rows in threads (detection.threads): pieces
# rather than metrics keep both cores busy whatever the metric count.
PIECE_ROWS = 131_072


def _usual_range(values: np.ndarray) -> tuple[float, float]:
    """The usual range of a baseline's values: their ``USUAL_EDGE`` and 1 - ``USUAL_EDGE``
    quantiles (of an evenly spaced sample of ``STATS_SAMPLE``); NaN when it has none."""
    values = sampled(values)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan, np.nan
    low, high = np.quantile(values, [USUAL_EDGE, 1 - USUAL_EDGE])
    return float(low), float(high)


def _recurring_ranges(rows: np.ndarray) -> np.ndarray:
    """The usual range of a typical stretch of each row of ``rows`` (a baseline's values,
    a series a row, sampled by ``base.sampled``): the median of the usual ranges of its
    ``RECURRENT_PARTS`` consecutive parts, (low, high) a row. A part is ranged for every
    row at once where the rows have no blank in it (a file of 5,000 metrics made 150,000
    quantile calls of a few values each: 18 s for 40 rows)."""
    ranges = np.full((RECURRENT_PARTS, len(rows), 2), np.nan)
    for p, part in enumerate(np.array_split(rows, RECURRENT_PARTS, axis=1)):
        whole = np.isfinite(part).all(axis=1)
        if part.shape[1] and whole.any():
            ranges[p, whole] = np.quantile(part[whole], [USUAL_EDGE, 1 - USUAL_EDGE],
                                           axis=1).T
        for i in np.flatnonzero(~whole):
            ranges[p, i] = _usual_range(part[i])
    with warnings.catch_warnings():  # a part of NaN alone (a blank stretch)
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(ranges, axis=0)


def _range_words(center: float, scale: float, low: float, high: float) -> str:
    """A usual range in standard units, as readings: ``12.5 to 58.5``."""
    return f"{fmt(center + low * scale)} to {fmt(center + high * scale)}"


def _pace(dataset: Dataset) -> float | None:
    """The median time between an entity's successive readings, in seconds (of an evenly
    spaced sample of them); None without two readings of an entity at different times."""
    order = dataset.readings[0]
    pairs = np.arange(0, order.size - 1, max(1, order.size // STATS_SAMPLE))
    codes, time = dataset.entity_codes[0], dataset.time.to_numpy()
    first, then = order[pairs], order[pairs + 1]
    gaps = (time[then] - time[first])[codes[then] == codes[first]] / np.timedelta64(1, "s")
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if gaps.size else None


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86_400), ("h", 3_600), ("min", 60)):
        if seconds >= 1.5 * size:
            amount = f"{seconds / size:.3g}"
            return f"{amount} {unit}{'s' if unit == 'day' else ''}"
    return f"{seconds:.3g} s"


def _blocks(entity_sorted: np.ndarray) -> list[tuple[int, int]]:
    if entity_sorted.size == 0:
        return []
    change = np.flatnonzero(entity_sorted[1:] != entity_sorted[:-1]) + 1
    edges = np.concatenate([[0], change, [entity_sorted.size]])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def _nth(blocks: list[tuple[int, int]], n: int) -> np.ndarray:
    """Each reading's place among its entity's readings (0: its first), in the order
    ``blocks`` cut."""
    nth = np.arange(n, dtype="int32")
    for start, end in blocks:
        nth[start:end] -= start
    return nth


def _pieces(n: int) -> list[slice]:
    return [slice(lo, min(lo + PIECE_ROWS, n)) for lo in range(0, n, PIECE_ROWS)]


def _in_threads(func, tasks) -> None:
    if len(tasks) == 1:  # a small file: starting threads would cost more than they save
        func(tasks[0])
        return
    with ThreadPoolExecutor(THREADS) as pool:
        for _ in pool.map(func, tasks):
            pass


def _moving(func, values: np.ndarray, blocks, window: int, min_count: int) -> np.ndarray:
    """A bottleneck moving statistic per entity block: each reading's value depends only
    on the ``window`` readings up to it in its block, never on how long the block is or
    what follows, so a file scored in pieces (with the readings before each piece) gets
    what one pass gets.

    Computed over pieces of rows in threads: a piece also reads the window - 1 readings
    before it; near a block's start, NaN stands for the readings that do not exist
    (bottleneck skips NaN and wants a full window of values).
    """
    out = np.empty_like(values)
    starts = np.array([start for start, _ in blocks])
    least = max(1, min(min_count, window))

    def piece(rows: slice) -> None:
        first = max(int(np.searchsorted(starts, rows.start, side="right")) - 1, 0)
        for start, end in blocks[first:]:
            if start >= rows.stop:
                break
            lo, hi = max(start, rows.start), min(end, rows.stop)
            lead = max(start, lo - (window - 1))
            segment = values[lead:hi]
            missing = window - 1 - (lo - lead)
            if missing:
                segment = np.concatenate([np.full(missing, np.nan), segment])
            out[lo:hi] = func(segment, window, min_count=least)[window - 1:]

    _in_threads(piece, _pieces(values.size))
    return out


def _shift(values: np.ndarray, blocks) -> np.ndarray:
    """The previous row's value within the same entity; NaN for each entity's first row."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    for start, _ in blocks:
        out[start] = np.nan
    return out


def _explained(z: np.ndarray, usual: np.ndarray) -> float:
    """Share of the spread of ``z`` that the usual level at each hour accounts for
    (1 - residual MAD^2 / MAD^2: robust to the outliers a baseline may hold)."""
    step = max(1, z.size // STATS_SAMPLE)
    z, usual = z[::step], usual[::step]
    spread = robust_center_scale(z)[1]
    return 1.0 - (robust_center_scale(z - usual)[1] / spread) ** 2


def _persistent(z: np.ndarray, median: np.ndarray) -> np.ndarray:
    """The part of a departure from the usual level that both the reading and the median
    of its window show: a sustained drift, not the readings just after a return to normal
    (nor a lone spike). Too few readings for a median (NaN, given as 0): the usual level."""
    same_side = np.sign(z) == np.sign(median)
    return np.where(same_side, np.sign(median) * np.minimum(np.abs(z), np.abs(median)), 0.0)


@dataclass
class _Rolling:
    """One metric in (entity, time) order: standardised values and their recent history."""

    z: np.ndarray
    previous: np.ndarray        # the reading before
    recent_median: np.ndarray   # median and MAD of the window before this reading
    recent_mad: np.ndarray
    spread: np.ndarray          # median change between readings, and median, of the window
    median: np.ndarray          # ending at this reading
    repeats: np.ndarray         # readings in a row before this one with exactly this value
    # Set by SensorFeatures._drift: the departure from the usual level at that hour (in
    # that hour's spread), and what a drift is judged on with its window median: that
    # departure where the hour explains the level, else z.
    off_hour: np.ndarray | None = None
    off: np.ndarray | None = None
    off_median: np.ndarray | None = None

    @classmethod
    def of(cls, z: np.ndarray, blocks, window: int) -> _Rolling:
        previous = _shift(z, blocks)
        median = _moving(bn.move_median, z, blocks, window, MIN_HISTORY)
        mad = _moving(bn.move_median, np.abs(z - median), blocks, window, MIN_HISTORY)
        index = np.arange(z.size)
        last_change = np.maximum.accumulate(np.where(z == previous, 0, index))
        return cls(
            z=z, previous=previous, recent_median=_shift(median, blocks),
            recent_mad=_shift(mad, blocks),
            # Changes between readings, not spread around the window's level: a daily
            # cycle's slope is no variability, and a quiet top of the cycle no "steady".
            # From fewer than half a window of readings it says little: unknown.
            spread=_moving(bn.move_median, np.abs(z - previous), blocks, window, window // 2),
            median=median, repeats=(index - last_change).astype("float64"),
        )


class SensorFeatures:
    """Featurizer for time series of one or more metrics, optionally per entity.

    Parameters
    ----------
    window : int, default 30
        Number of preceding readings the recent-window features look at.
    """

    def __init__(self, window: int = 30):
        self.window = window

    # -- learning ---------------------------------------------------------------
    def fit(self, dataset: Dataset) -> SensorFeatures:
        self.fit_transform(dataset)
        return self

    def fit_transform(self, dataset: Dataset) -> FeatureSet:
        metrics = dataset.metrics
        self.metrics_ = list(metrics.columns)
        self.version_ = FEATURES_VERSION
        codes, names = dataset.entity_codes
        rows_of = pd.Series(np.arange(len(dataset))).groupby(codes).indices
        self.entity_stats_: dict[str, dict[str, tuple[float, float]]] = {}
        self.global_stats_: dict[str, tuple[float, float]] = {}
        for name in self.metrics_:
            values = metrics[name].to_numpy()
            self.global_stats_[name] = robust_center_scale(values)
            self.entity_stats_[name] = {
                str(names[code]): robust_center_scale(values[idx]) for code, idx in rows_of.items()
            }
        self.pace_ = _pace(dataset)
        # Streams read each piece with it: a piece too small to show the layout that
        # told the machine column (Dataset) apart still has the machines as series.
        self.entity_column_ = dataset.mapping.entity
        span = dataset.time.max() - dataset.time.min()
        self.use_time_of_day_ = span >= pd.Timedelta(days=MIN_DAYS_FOR_TOD)
        self.tod_: dict[str, np.ndarray] = {}
        self.daily_: dict[str, bool] = {}
        self.step_scale_: dict[str, float] = {}
        self.spread_typical_: dict[str, float] = {}
        self.repeat_allowance_: dict[str, float] = {}
        self.trend_usual_: dict[str, tuple[float, float]] = {}
        related = len(self.metrics_) >= RELATION_MIN_METRICS
        candidates = [f"{m}:{k}" for m in self.metrics_ for k in KINDS
                      if (k != "time_of_day" or self.use_time_of_day_)
                      and (k != "relation" or related)]
        ordered, context = self._assemble(dataset, candidates, learn=True)
        # A feature with one value all through the baseline can never split a tree: leave
        # it out (e.g. repeats, when no sensor in the baseline ever stuck).
        varies = ordered.max(axis=1) > ordered.min(axis=1)
        if not varies.any():
            varies[:] = True
        self.feature_names_ = [f for f, keep in zip(candidates, varies, strict=True) if keep]
        # Kept rows moved up in place: a boolean index would copy every feature.
        for target, source in enumerate(np.flatnonzero(varies)):
            if target != source:
                ordered[target] = ordered[source]
        ordered = ordered[: int(varies.sum())]
        # Reference spread of each feature, for ranking reasons.
        centers, scales = robust_centers_scales(ordered)
        self.feature_center_ = centers
        self.feature_scale_ = np.maximum(scales, 1e-6)
        # A level's recurring usual range (``RANGED``; NaN for the other kinds).
        ranged = np.array([name.rsplit(":", 1)[1] in RANGED for name in self.feature_names_])
        self.feature_edges_ = np.full((len(ranged), 2), np.nan)
        if ranged.any():
            self.feature_edges_[ranged] = _recurring_ranges(sampled(ordered)[ranged])
        return FeatureSet(X=self._frame(dataset, ordered, context), context=context)

    def _reason_units(self, values: np.ndarray, hours: np.ndarray) -> np.ndarray:
        """The unit each of ``values`` (rows of features, read at ``hours``) is ranked in:
        its feature's spread; for a level, widened to where its recurring usual range
        reaches on the value's side, in ``EDGE_UNITS``; for the level for the hour, to
        where that hour's usual range reaches. A machine that is off a third of the time
        has the small MAD of its running level: in those units its every stop read as the
        most unusual fact of the row ("power 1.61, usual 77.3 ± 8.28"), though a third of
        the baseline reads so; a metric idle at 0.1 with bursts to 99 at any hour read
        "cpu 88.8, usual 0.1 ± 19.4 at 07:00", a spread reaching below zero."""
        edges = getattr(self, "feature_edges_", None)  # a model saved before: the spread
        if edges is None:
            return self.feature_scale_
        edge = np.where(values < self.feature_center_, edges[:, 0], edges[:, 1])
        for j, metric in self._hour_ranged():
            # The hour's range in the feature's units: (level - hour's centre) / its spread.
            center, scale, low, high = self.tod_[metric][hours].T
            edge[:, j] = (np.where(values[:, j] < self.feature_center_[j], low, high)
                          - center) / scale
        reach = np.abs(edge - self.feature_center_) / EDGE_UNITS
        return np.fmax(reach, self.feature_scale_)  # NaN edges: the spread

    def _hour_ranged(self) -> list[tuple[int, str]]:
        """(column, metric) of each level-for-the-hour feature whose hours' usual ranges the
        model knows (a model saved before knows their spreads only)."""
        pairs = [(j, name.rsplit(":", 1)) for j, name in enumerate(self.feature_names_)]
        return [(j, metric) for j, (metric, kind) in pairs
                if kind == "time_of_day" and self._knows_hour_ranges(metric)]

    def _knows_hour_ranges(self, metric: str) -> bool:
        """Whether the model keeps each hour's usual range of ``metric`` beside its spread."""
        return self.tod_[metric].shape[1] == 4

    def _learn(self, name: str, r: _Rolling, hours: np.ndarray) -> None:
        """What scoring needs to know of a metric's baseline, from its rolling arrays."""
        if self.use_time_of_day_:
            self.tod_[name] = self._learn_time_of_day(r.z, hours)
            self.daily_[name] = _explained(r.z, self.tod_[name][hours, 0]) >= DAILY
        self.step_scale_[name] = max(robust_center_scale(r.z - r.previous)[1], 0.05)
        finite = np.isfinite(r.spread)
        self.spread_typical_[name] = (float(np.median(r.spread[finite])) if finite.any()
                                      else 1.0)
        usual = float(np.quantile(r.repeats[:: max(1, len(r.repeats) // STATS_SAMPLE)], 0.99))
        self.repeat_allowance_[name] = 2 * usual + MIN_REPEATS

    def _learn_time_of_day(self, z: np.ndarray, hours: np.ndarray) -> np.ndarray:
        """Per hour of day (a row each): the usual standardised level, its spread (robust,
        and at least its usual range over ``HOUR_RANGE_UNITS``) and that usual range's
        low and high ends (NaN for an hour without readings)."""
        step = max(1, z.size // STATS_SAMPLE)
        z, hours = z[::step], hours[::step]
        tod = np.tile([0.0, 1.0, np.nan, np.nan], (24, 1))
        for hour in np.unique(hours):
            values = z[hours == hour]
            values = values[np.isfinite(values)]
            if values.size:
                center, scale = robust_center_scale(values)
                low, high = _usual_range(values)
                with np.errstate(over="ignore"):  # readings near 1e308
                    tod[hour] = center, max(scale, (high - low) / HOUR_RANGE_UNITS), low, high
        return tod

    # -- transforming -----------------------------------------------------------
    def _order(self, dataset: Dataset):
        order, place = dataset.readings
        blocks = _blocks(dataset.entity_codes[0][order])
        hours = dataset.time.dt.hour.to_numpy()[order]
        return order, place, blocks, hours

    def _standardise(self, dataset: Dataset, name: str) -> np.ndarray:
        values = dataset.metrics[name].to_numpy(dtype="float64")
        center, scale = self._center_scale(dataset, name)
        return (values - center) / scale

    def _center_scale(self, dataset: Dataset, name: str,
                      rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each row's (or each of ``rows``') entity level and scale for metric ``name``."""
        inverse, keys = dataset.entity_codes
        if rows is not None:
            inverse = inverse[rows]
        known = self.entity_stats_[name]
        fallback = self.global_stats_[name]
        # An entity the model never saw is compared with all entities together.
        table = np.array([known.get(str(k), fallback) for k in keys]).reshape(-1, 2)
        return table[inverse, 0], table[inverse, 1]

    def spreads(self, entity: str) -> np.ndarray:
        """Each metric's robust spread in the baseline for ``entity`` (one the baseline
        lacks: all its entities' together), in the metrics' order."""
        return np.array([self.entity_stats_[m].get(entity, self.global_stats_[m])[1]
                         for m in self.metrics_])

    def transform(self, dataset: Dataset) -> FeatureSet:
        if getattr(self, "version_", 1) != FEATURES_VERSION:
            raise ModelMismatchError("this sensor model was saved by an earlier Vigil whose "
                                     "features differ: train it again on its baseline")
        trained_metrics(dataset, self.metrics_)
        ordered, context = self._assemble(dataset, self.feature_names_)
        return FeatureSet(X=self._frame(dataset, ordered, context), context=context,
                          warnings=self._pace_warnings(dataset) + self._clock_warnings(dataset)
                          + self._entity_warnings(dataset))

    def _entity_warnings(self, dataset: Dataset) -> list[str]:
        """A warning naming the file's machines that the model's baseline lacks (a fleet
        grown since): each is compared with all the baseline's machines together."""
        known = self.entity_stats_[self.metrics_[0]]
        if dataset.entity is None or list(known) == [""]:  # a model of one series
            return []
        codes, names = dataset.entity_codes
        new = np.flatnonzero([str(name) not in known for name in names])
        if not new.size:
            return []
        rows = int(np.isin(codes, new).sum())
        shown = ", ".join(f"'{names[k]}'" for k in new[:5]) + (", ..." if new.size > 5 else "")
        column = dataset.mapping.entity or "machine"
        return [f"{new.size} {column} value(s) not in the model's baseline ({shown}): "
                f"their {rows:,} row(s) are compared with all of its machines together, "
                "not with a history of their own; train a model that includes them"]

    def _clock_warnings(self, dataset: Dataset) -> list[str]:
        """A warning when the file's daily cycle runs some hours off the baseline's: its
        times are in another time zone than the baseline's (or across a clock change),
        and every hour's level looks wrong. Judged from two days of readings up, on the
        metrics whose level the hour explains."""
        daily = [name for name in self.metrics_ if getattr(self, "daily_", {}).get(name)]
        span = dataset.time.max() - dataset.time.min()
        if not daily or span < pd.Timedelta(days=MIN_DAYS_FOR_TOD):
            return []
        sample = slice(None, None, max(1, len(dataset) // STATS_SAMPLE))
        hours = dataset.time.iloc[sample].dt.hour.to_numpy()
        if np.bincount(hours, minlength=24).min() == 0:
            return []
        # Mean distance of the file's usual level at each hour from the baseline's at the
        # hour ``shift`` before, over the daily metrics, for each shift of -12 to 11 hours.
        distance = np.zeros(24)
        for name in daily:
            level = self._learn_time_of_day(self._standardise(dataset, name)[sample], hours)[:, 0]
            usual = self.tod_[name][:, 0]
            distance += [np.mean(np.abs(level - np.roll(usual, shift))) for shift in range(-12, 12)]
        shift = int(np.argmin(distance)) - 12
        if shift == 0 or distance[shift + 12] * CLOCK_BETTER > distance[12]:
            return []
        later = f"{abs(shift)} h {'later' if shift > 0 else 'earlier'}"
        names = ", ".join(daily)
        return [f"the daily cycle of {names} runs {later} than in the model's baseline: if the "
                "file's times are in another time zone (or across a clock change), give them "
                "as the baseline's; if the schedule moved, train a model on the new one"]

    def _pace_warnings(self, dataset: Dataset) -> list[str]:
        """A warning when the file's readings come at another pace than the baseline's."""
        learned, pace = getattr(self, "pace_", None), _pace(dataset)  # None: an older model
        if not learned or not pace or 1 / PACE_RATIO < pace / learned < PACE_RATIO:
            return []
        return [f"readings come every {_duration(pace)} here, every {_duration(learned)} in "
                f"the model's baseline: its window of {self.window} readings spans "
                f"{_duration(pace * self.window)} here, not {_duration(learned * self.window)}, "
                "so change and variability are measured over other stretches of time than "
                "it learned. Train a model on readings at this pace"]

    def _drift(self, name: str, r: _Rolling, hours: np.ndarray, blocks) -> None:
        """A drift is judged against the usual level at that hour where the metric has a
        daily cycle: against the overall level, a busy hour's readings (a lift at rush
        hour) would look like one."""
        r.off, r.off_median = r.z, r.median
        if self.use_time_of_day_:
            tod = self.tod_[name]
            r.off_hour = (r.z - tod[hours, 0]) / tod[hours, 1]
            if self.daily_[name]:
                r.off = r.off_hour
                r.off_median = _moving(bn.move_median, r.off, blocks, self.window, MIN_HISTORY)

    def _kinds(self, name: str, r: _Rolling, hours: np.ndarray,
               rows: slice) -> dict[str, np.ndarray]:
        """Every feature kind of one metric for ``rows`` of the rolling arrays."""
        z, hours = r.z[rows], hours[rows]
        local = (z - r.recent_median[rows]) / np.maximum(1.4826 * r.recent_mad[rows], LOCAL_FLOOR)
        step = (z - r.previous[rows]) / self.step_scale_[name]
        typical = self.spread_typical_[name]
        # asinh keeps the sign and order but tames the huge ratios a quiet window gives,
        # which would otherwise dominate the forest's random splits.
        kinds = {
            "level": z,
            "vs_recent": np.arcsinh(np.nan_to_num(local)),
            "step": np.arcsinh(np.nan_to_num(step)),
            "spread": np.log(np.nan_to_num(r.spread[rows], nan=typical) + SPREAD_FLOOR)
            - np.log(typical + SPREAD_FLOOR),
            "trend": _persistent(r.off[rows], np.nan_to_num(r.off_median[rows])),
            "repeat": np.log1p(np.maximum(r.repeats[rows] - self.repeat_allowance_[name], 0)),
        }
        if self.use_time_of_day_:
            kinds["time_of_day"] = r.off_hour[rows]
        return kinds

    def _assemble(self, dataset: Dataset, names: list[str], *, learn: bool = False):
        """The features ``names`` in (entity, time) order, one row each, and the context
        explanations quote (``learn``: learning each metric's baseline on the way).

        One metric at a time: its rolling arrays are let go once its features are filled,
        but for the five explanations quote. Features and context arrays hold one column
        per distinct reading (``Dataset.readings``), in (entity, time) order;
        ``context["position"]`` maps a file position to its reading's place in them.
        """
        order, place, blocks, hours = self._order(dataset)
        row_of = {f: j for j, f in enumerate(names)}
        # One contiguous row per feature while filling; pandas stores columns this way too.
        ordered = np.empty((len(names), order.size), dtype="float32")
        context = {"position": place.astype("int32"), "nth": _nth(blocks, order.size)}
        related = any(n.endswith(":relation") for n in names)
        levels, trends = [], []
        for name in self.metrics_:
            r = _Rolling.of(self._standardise(dataset, name)[order], blocks, self.window)
            if related:
                levels.append(r.z.astype("float32"))
            if learn:
                self._learn(name, r, hours)
            self._drift(name, r, hours, blocks)
            if learn:
                trends.append(sampled(r.off_median))

            def fill(rows: slice, name=name, r=r) -> None:
                for kind, values in self._kinds(name, r, hours, rows).items():
                    if f"{name}:{kind}" in row_of:
                        ordered[row_of[f"{name}:{kind}"], rows] = as_float32(values)

            _in_threads(fill, _pieces(order.size))
            context |= {f"{name}:recent_median": r.recent_median, f"{name}:spread": r.spread,
                        f"{name}:off_median": r.off_median, f"{name}:previous": r.previous,
                        f"{name}:repeats": r.repeats.astype("int32")}
        if trends:
            self.trend_usual_ = dict(zip(self.metrics_, map(tuple, _recurring_ranges(
                np.stack(trends)).tolist()), strict=True))
        if related:
            levels = np.stack(levels, axis=1)
            if learn:
                self._learn_relation(levels)
            residuals = self._residuals(levels)
            for j, name in enumerate(self.metrics_):
                if f"{name}:relation" in row_of:
                    ordered[row_of[f"{name}:relation"]] = as_float32(residuals[:, j])
        return ordered, context

    def _learn_relation(self, levels: np.ndarray) -> None:
        """The baseline's principal components (explaining ``RELATION_VARIANCE`` of its
        variance; all metrics but one at most) and each metric's usual departure from
        what they imply."""
        sample = levels[:: max(1, len(levels) // STATS_SAMPLE)].astype("float64")
        sample = sample[np.isfinite(sample).all(axis=1)]
        self.relation_mean_ = sample.mean(axis=0)
        _, singular, vt = np.linalg.svd(sample - self.relation_mean_, full_matrices=False)
        share = np.cumsum(singular ** 2) / max(float(np.sum(singular ** 2)), 1e-12)
        keep = min(int(np.searchsorted(share, RELATION_VARIANCE)) + 1, levels.shape[1] - 1)
        self.relation_axes_ = vt[:keep]
        departures = self._departures(sample)
        self.relation_scale_ = np.maximum(
            [robust_center_scale(departures[:, j])[1] for j in range(levels.shape[1])], 1e-6)

    def _departures(self, levels: np.ndarray) -> np.ndarray:
        """Each metric's departure from what the baseline's relation implies, in standard
        units (standardised levels in; a missing level counts as the usual)."""
        centred = np.nan_to_num(np.asarray(levels, dtype="float64") - self.relation_mean_)
        return centred - (centred @ self.relation_axes_.T) @ self.relation_axes_

    def _residuals(self, levels: np.ndarray) -> np.ndarray:
        """The departures in each metric's usual departures: the relation features."""
        return self._departures(levels) / self.relation_scale_

    def _frame(self, dataset: Dataset, ordered: np.ndarray, context: dict) -> pd.DataFrame:
        position = context["position"]
        # A file already in (entity, time) order (one sensor, or sorted by entity) keeps
        # the filled rows as its columns: no second copy of every feature.
        in_order = bool(np.all(position[1:] > position[:-1]))
        X = (ordered if in_order else ordered[:, position]).T
        return pd.DataFrame(X, index=dataset.frame.index, columns=self.feature_names_, copy=False)

    def feature_label(self, name: str) -> str:
        """A feature as people read it: ``vibration (variability)``."""
        metric, kind = name.rsplit(":", 1)
        return f"{metric} ({KIND_WORDS[kind]})"

    def level_columns(self, dataset: Dataset, features: FeatureSet) -> pd.DataFrame:
        return dataset.metrics[self.metrics_]

    # -- explaining -------------------------------------------------------------
    def learning(self, features: FeatureSet) -> np.ndarray:
        """Rows among their entity's first ``window`` readings of the file: their recent
        readings are too few to tell an odd one from a start (the learning period)."""
        nth = features.context.get("nth")
        if nth is None:
            return np.zeros(len(features.X), dtype=bool)
        return nth[features.context["position"]] < self.window

    def bounds(self, features: FeatureSet) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Least and most each row may score beside the detector: during the learning
        period, never critical."""
        return None, np.where(self.learning(features), LEARNING_CEILING, np.inf)

    def explain(self, dataset: Dataset, features: FeatureSet, rows: np.ndarray) -> list[str]:
        X = features.X.to_numpy()[rows]
        hours = dataset.time.iloc[rows].dt.hour.to_numpy()
        units = self._reason_units(X, hours)
        top = rank_features(X, self.feature_center_, units, top=4)
        # A value within its feature's usual range is no reason of its own: after the
        # first, such phrases are left out.
        usual = np.abs(X - self.feature_center_) <= EDGE_UNITS * units
        centers = {m: self._center_scale(dataset, m, rows) for m in self.metrics_}
        actual = {m: dataset.metrics[m].to_numpy()[rows] for m in self.metrics_}
        implied = self._implied(centers, actual) if hasattr(self, "relation_axes_") else None
        blank = {} if dataset.blank is None else {
            m: dataset.blank[m].to_numpy()[rows] for m in self.metrics_ if m in dataset.blank}
        learning = self.learning(features)[rows]
        nth = features.context["nth"][features.context["position"][rows]] \
            if "nth" in features.context else np.zeros(len(rows), dtype="int32")
        reasons = []
        for i, (row, picks) in enumerate(zip(rows, top, strict=True)):
            # A metric the file left blank here has no reading to quote: its features
            # measured the reading before, held.
            gone = [m for m in blank if blank[m][i]]
            parts = [f"{m} missing: held at {fmt(actual[m][i])}, the reading before"
                     for m in gone]
            said = {(m, family) for m in gone for family in FAMILY.values()}
            for j in picks:
                metric, kind = self.feature_names_[j].rsplit(":", 1)
                # One phrase per metric and family: the level seen three ways is one fact.
                if (metric, FAMILY[kind]) in said or len(parts) == 2 + len(gone) \
                        or (usual[i, j] and len(parts) > len(gone)):
                    continue
                said.add((metric, FAMILY[kind]))
                if kind == "relation":
                    parts.append(f"{metric} {fmt(actual[metric][i])} where the other metrics "
                                 f"imply {fmt(implied[metric][i])}")
                    continue
                center, scale = centers[metric][0][i], centers[metric][1][i]
                # A usual range that reaches farther on this side than the spread says.
                edges = self.feature_edges_[j] if units[i, j] > self.feature_scale_[j] else None
                parts.append(self._phrase(features, metric, kind, row, hours[i], actual[metric][i],
                                          center, scale, X[i, j], edges))
            if learning[i]:
                parts.append(f"learning: {nth[i]} earlier reading(s), so not critical")
            reasons.append("; ".join(dict.fromkeys(parts)))
        return reasons

    def _implied(self, centers: dict, actual: dict) -> dict[str, np.ndarray]:
        """Per metric, the value the other metrics' levels imply for each explained row."""
        levels = np.column_stack([(actual[m] - centers[m][0]) / centers[m][1]
                                  for m in self.metrics_])
        gaps = self._departures(levels)
        return {m: actual[m] - gaps[:, j] * centers[m][1] for j, m in enumerate(self.metrics_)}

    def _phrase(self, features, metric, kind, row, hour, actual, center, scale, value,
                edges=None) -> str:
        """One reason: ``value`` is the feature's, ``edges`` a level's usual range (in
        standard units) where it, not the spread, tells what is usual. The level for the
        hour is told by the hour's usual range, whose spread it is (a model saved before
        knows the spread only)."""
        ctx = features.context
        at = ctx["position"][row]  # the row's place in the context arrays
        if kind == "time_of_day":
            tod = self.tod_[metric][hour]
            if self._knows_hour_ranges(metric) and np.isfinite(tod[2:]).all():
                return (f"{metric} {fmt(actual)}, usual "
                        f"{_range_words(center, scale, *tod[2:])} at {hour:02d}:00")
            return level_phrase(metric, actual, center + tod[0] * scale, tod[1] * scale,
                                f" at {hour:02d}:00")
        if kind == "vs_recent":
            recent = center + ctx[f"{metric}:recent_median"][at] * scale
            return f"{metric} {fmt(actual)} vs {fmt(recent)} over the previous {self.window} readings"
        if kind == "step":
            previous = center + ctx[f"{metric}:previous"][at] * scale
            change = actual - previous
            return (f"{metric} {'jumped' if change > 0 else 'dropped'} from {fmt(previous)} to "
                    f"{fmt(actual)} (usual step ± {fmt(self.step_scale_[metric] * scale)})")
        if kind == "repeat":
            count = int(ctx[f"{metric}:repeats"][at]) + 1
            return (f"{metric} flat at {fmt(actual)}: the same reading {count} times in a row "
                    "(stuck sensor?)")
        if kind == "spread":
            spread = ctx[f"{metric}:spread"][at] * scale
            typical = self.spread_typical_[metric] * scale
            said = (f"median change between readings {fmt(spread)} over the last {self.window} "
                    f"readings, usual {fmt(typical)}")
            if value < 0 and spread < FLAT_SHARE * typical:
                return f"{metric} flat at {fmt(actual)}: {said} (stuck sensor?)"
            return f"{metric} {'unusually steady' if value < 0 else 'erratic'}: {said}"
        if kind == "trend":
            median = ctx[f"{metric}:off_median"][at]
            if not self.daily_.get(metric):
                # The window medians' own usual range: a median of 30 readings strays far
                # less than one reading (a model saved before it knew: the readings').
                low, high = getattr(self, "trend_usual_", {}).get(metric, (np.nan, np.nan))
                usual = (_range_words(center, scale, low, high) if np.isfinite(low)
                         else f"{fmt(center)} ± {fmt(scale)}")
                return (f"{metric} median {fmt(center + median * scale)} over the last "
                        f"{self.window} readings, usual {usual}")
            gap = median * self.tod_[metric][hour][1] * scale
            # Told by the reading's own departure first: at the start of a level shift
            # the median of the window lags (a 5-degree shift read "0.499 above").
            usual = center + self.tod_[metric][hour][0] * scale
            step = actual - usual
            return (f"{metric} {fmt(actual)}, {fmt(abs(step))} "
                    f"{'above' if step > 0 else 'below'} its usual {fmt(usual)} at "
                    f"{hour:02d}:00; the median of the last {self.window} readings "
                    f"{fmt(abs(gap))} {'above' if gap > 0 else 'below'} the usual for "
                    "their hours")
        if edges is not None:
            return f"{metric} {fmt(actual)}, usual {_range_words(center, scale, *edges)}"
        return level_phrase(metric, actual, center, scale)
