"""Sensor features, per entity and metric, from the row and the rows before it.

For every metric: the level (standardised per entity), its deviation from the usual
level at that hour of day, a robust z-score against the preceding readings
(median/MAD), the step from the previous reading, the variability of the recent
window (a stuck sensor has none) and the recent mean (a sustained drift).
"""

from __future__ import annotations

import bottleneck as bn
import numpy as np
import pandas as pd

from detection.dataset import Dataset
from detection.features.base import (
    FeatureSet,
    fmt,
    level_phrase,
    rank_features,
    robust_center_scale,
    trained_metrics,
)

KINDS = ("level", "time_of_day", "vs_recent", "step", "spread", "trend")
FAMILY = {"level": "level", "time_of_day": "level", "trend": "level", "vs_recent": "change",
          "step": "change", "spread": "spread"}
MIN_HISTORY = 5        # readings before the recent-window features say anything
SPREAD_FLOOR = 0.01    # in per-entity standard units: keeps log(std) finite when stuck
LOCAL_FLOOR = 0.1      # smallest recent MAD, so a quiet window does not inflate z
MIN_DAYS_FOR_TOD = 2
STATS_SAMPLE = 100_000   # rows used for the features' reference spread   # fewer days cannot tell a daily cycle from a trend


def _blocks(entity_sorted: np.ndarray) -> list[tuple[int, int]]:
    if entity_sorted.size == 0:
        return []
    change = np.flatnonzero(entity_sorted[1:] != entity_sorted[:-1]) + 1
    edges = np.concatenate([[0], change, [entity_sorted.size]])
    return list(zip(edges[:-1], edges[1:], strict=True))


def _per_block(func, values: np.ndarray, blocks) -> np.ndarray:
    out = np.empty_like(values)
    for start, end in blocks:
        out[start:end] = func(values[start:end])
    return out


def _moving(func, values: np.ndarray, blocks, window: int, min_count: int) -> np.ndarray:
    """A bottleneck moving statistic per entity block (short blocks get a short window)."""
    def one(v: np.ndarray) -> np.ndarray:
        w = max(1, min(window, v.size))
        return func(v, w, min_count=max(1, min(min_count, w)))

    return _per_block(one, values, blocks)


def _shift(values: np.ndarray, blocks) -> np.ndarray:
    """The previous row's value within the same entity; NaN for each entity's first row."""
    out = np.empty_like(values)
    out[1:] = values[:-1]
    for start, _ in blocks:
        out[start] = np.nan
    return out


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
        codes, names = dataset.entity_codes
        self.entity_stats_: dict[str, dict[str, tuple[float, float]]] = {}
        self.global_stats_: dict[str, tuple[float, float]] = {}
        for name in self.metrics_:
            values = metrics[name].to_numpy()
            self.global_stats_[name] = robust_center_scale(values)
            self.entity_stats_[name] = {
                str(names[code]): robust_center_scale(values[idx])
                for code, idx in pd.Series(np.arange(len(values))).groupby(codes).indices.items()
            }
        span = dataset.time.max() - dataset.time.min()
        self.use_time_of_day_ = span >= pd.Timedelta(days=MIN_DAYS_FOR_TOD)
        self.feature_names_ = [
            f"{m}:{k}" for m in self.metrics_ for k in KINDS
            if k != "time_of_day" or self.use_time_of_day_
        ]
        order, blocks, hours = self._order(dataset)
        self.tod_: dict[str, np.ndarray] = {}
        self.step_scale_: dict[str, float] = {}
        self.spread_typical_: dict[str, float] = {}
        for name in self.metrics_:
            z = self._standardise(dataset, name)[order]
            if self.use_time_of_day_:
                table = pd.Series(z).groupby(hours).agg(["median"])
                tod = np.zeros((24, 2))
                tod[:, 1] = 1.0
                for hour, center in table["median"].items():
                    c, s = robust_center_scale(z[hours == hour] - center)
                    tod[int(hour)] = (center + c, s)
                self.tod_[name] = tod
            steps = z - _shift(z, blocks)
            self.step_scale_[name] = max(robust_center_scale(steps)[1], 0.05)
            std = _moving(bn.move_std, z, blocks, self.window, self.window // 2)
            self.spread_typical_[name] = float(np.nanmedian(std)) if np.isfinite(std).any() else 1.0
        features = self.transform(dataset)
        # Reference spread of each feature, for ranking reasons: a sample is plenty.
        X = features.X.to_numpy()[:: max(1, len(dataset) // STATS_SAMPLE)]
        stats = [robust_center_scale(X[:, j]) for j in range(X.shape[1])]
        self.feature_center_ = np.array([c for c, _ in stats])
        self.feature_scale_ = np.array([max(s, 1e-6) for _, s in stats])
        return features

    # -- transforming -----------------------------------------------------------
    def _order(self, dataset: Dataset):
        codes = dataset.entity_codes[0]
        order = np.lexsort((dataset.time.to_numpy(), codes))
        blocks = _blocks(codes[order])
        hours = dataset.time.dt.hour.to_numpy()[order]
        return order, blocks, hours

    def _standardise(self, dataset: Dataset, name: str) -> np.ndarray:
        values = dataset.metrics[name].to_numpy(dtype="float64")
        center, scale = self._center_scale(dataset, name)
        return (values - center) / scale

    def _center_scale(self, dataset: Dataset, name: str) -> tuple[np.ndarray, np.ndarray]:
        inverse, keys = dataset.entity_codes
        known = self.entity_stats_[name]
        fallback = self.global_stats_[name]
        # An entity the model never saw is compared with all entities together.
        table = np.array([known.get(str(k), fallback) for k in keys]).reshape(-1, 2)
        return table[inverse, 0], table[inverse, 1]

    def transform(self, dataset: Dataset) -> FeatureSet:
        trained_metrics(dataset, self.metrics_)
        order, blocks, hours = self._order(dataset)
        n = len(dataset)
        columns: dict[str, np.ndarray] = {}
        context: dict[str, np.ndarray] = {}
        w = self.window

        def unsort(values: np.ndarray) -> np.ndarray:
            out = np.empty(n, dtype="float64")
            out[order] = values
            return out

        for name in self.metrics_:
            z = self._standardise(dataset, name)[order]
            median = _moving(bn.move_median, z, blocks, w, MIN_HISTORY)
            mad = _moving(bn.move_median, np.abs(z - median), blocks, w, MIN_HISTORY)
            prev_median, prev_mad = _shift(median, blocks), _shift(mad, blocks)
            local = (z - prev_median) / np.maximum(1.4826 * prev_mad, LOCAL_FLOOR)
            step = (z - _shift(z, blocks)) / self.step_scale_[name]
            std = _moving(bn.move_std, z, blocks, w, w // 2)
            spread = np.log(np.nan_to_num(std, nan=self.spread_typical_[name]) + SPREAD_FLOOR) - \
                np.log(self.spread_typical_[name] + SPREAD_FLOOR)
            trend = _moving(bn.move_mean, z, blocks, w, 1)
            # asinh keeps the sign and order but tames the huge ratios a quiet window gives,
            # which would otherwise dominate the forest's random splits.
            kinds = {"level": z, "vs_recent": np.arcsinh(np.nan_to_num(local)),
                     "step": np.arcsinh(np.nan_to_num(step)),
                     "spread": spread, "trend": trend}
            if self.use_time_of_day_:
                tod = self.tod_[name]
                kinds["time_of_day"] = (z - tod[hours, 0]) / tod[hours, 1]
            for kind in KINDS:
                if kind in kinds:
                    columns[f"{name}:{kind}"] = unsort(kinds[kind])
            context[f"{name}:recent_median"] = unsort(prev_median)
            context[f"{name}:std"] = unsort(std)
            context[f"{name}:previous"] = unsort(_shift(z, blocks))
        X = pd.DataFrame(columns, index=dataset.frame.index)[self.feature_names_]
        return FeatureSet(X=X.astype("float32"), context=context)

    def level_columns(self, dataset: Dataset, features: FeatureSet) -> pd.DataFrame:
        return dataset.metrics[self.metrics_]

    # -- explaining -------------------------------------------------------------
    def explain(self, dataset: Dataset, features: FeatureSet, rows: np.ndarray) -> list[str]:
        X = features.X.to_numpy()[rows]
        top = rank_features(X, self.feature_center_, self.feature_scale_, top=4)
        hours = dataset.time.dt.hour.to_numpy()[rows]
        centers = {m: self._center_scale(dataset, m) for m in self.metrics_}
        actual = {m: dataset.metrics[m].to_numpy() for m in self.metrics_}
        reasons = []
        for i, (row, picks) in enumerate(zip(rows, top, strict=True)):
            parts, said = [], set()
            for j in picks:
                metric, kind = self.feature_names_[j].rsplit(":", 1)
                # One phrase per metric and family: the level seen three ways is one fact.
                if (metric, FAMILY[kind]) in said or len(parts) == 2:
                    continue
                said.add((metric, FAMILY[kind]))
                center, scale = centers[metric][0][row], centers[metric][1][row]
                parts.append(self._phrase(features, metric, kind, row, hours[i], actual[metric][row],
                                          center, scale, X[i, j]))
            reasons.append("; ".join(dict.fromkeys(parts)))
        return reasons

    def _phrase(self, features, metric, kind, row, hour, actual, center, scale, value) -> str:
        ctx = features.context
        if kind == "time_of_day":
            tod_center, tod_scale = self.tod_[metric][hour]
            return level_phrase(metric, actual, center + tod_center * scale, tod_scale * scale,
                                f" at {hour:02d}:00")
        if kind == "vs_recent":
            recent = center + ctx[f"{metric}:recent_median"][row] * scale
            return f"{metric} {fmt(actual)} vs {fmt(recent)} over the previous {self.window} readings"
        if kind == "step":
            previous = center + ctx[f"{metric}:previous"][row] * scale
            change = actual - previous
            return (f"{metric} {'jumped' if change > 0 else 'dropped'} from {fmt(previous)} to "
                    f"{fmt(actual)} (usual step ± {fmt(self.step_scale_[metric] * scale)})")
        if kind == "spread":
            std = ctx[f"{metric}:std"][row] * scale
            typical = self.spread_typical_[metric] * scale
            if value < 0:
                return (f"{metric} flat at {fmt(actual)}: variation {fmt(std)} over the last "
                        f"{self.window} readings, usual {fmt(typical)} (stuck sensor?)")
            return (f"{metric} erratic: variation {fmt(std)} over the last {self.window} "
                    f"readings, usual {fmt(typical)}")
        if kind == "trend":
            mean = center + value * scale
            return f"{metric} averaged {fmt(mean)} over the last {self.window} readings, usual {fmt(center)} ± {fmt(scale)}"
        return level_phrase(metric, actual, center, scale)
