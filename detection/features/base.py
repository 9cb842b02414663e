"""What every featurizer provides, and small helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import numpy as np
import pandas as pd

from detection.dataset import Dataset
from detection.errors import ModelMismatchError

STATS_SAMPLE = 100_000  # values a reference statistic is estimated from, at most


@dataclass
class FeatureSet:
    """Features of a dataset in file order (index = data row number).

    ``context`` holds intermediate arrays that only the featurizer's own ``explain``
    quotes: in file order, unless the featurizer says otherwise (the sensor featurizer
    keeps them in (entity, time) order with a ``position`` map). ``warnings``: what the
    featurizer noticed of the file against its baseline, for the scored file's warnings.
    """

    X: pd.DataFrame
    context: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class Featurizer(Protocol):
    feature_names_: list[str]

    def fit(self, dataset: Dataset) -> Featurizer: ...

    def fit_transform(self, dataset: Dataset) -> FeatureSet:
        """Fit on a baseline and return its own features (computed once)."""
        ...

    def transform(self, dataset: Dataset) -> FeatureSet: ...

    def level_columns(self, dataset: Dataset, features: FeatureSet) -> pd.DataFrame:
        """The plain values a z-score detector compares with mean and std."""
        ...

    def explain(self, dataset: Dataset, features: FeatureSet, rows: np.ndarray) -> list[str]:
        """Plain-language reasons for the rows at positions ``rows`` (file order)."""
        ...


def trained_metrics(dataset: Dataset, names: list[str]) -> pd.DataFrame:
    """The metric columns a model was trained on, or a ModelMismatchError naming the gap."""
    have = [] if dataset.metrics is None else list(dataset.metrics.columns)
    missing = [c for c in names if c not in have]
    if missing:
        # A column present without a number (a sensor that sent nothing) is no metric.
        blank = [c for c in missing if c in dataset.frame.columns]
        absent = [c for c in missing if c not in blank]
        gaps = ([f"this file lacks {', '.join(map(repr, absent))}{_alike(dataset, absent)}"]
                if absent else []) + (
            [f"its column{'s' if len(blank) > 1 else ''} {', '.join(map(repr, blank))} "
             f"hold{'' if len(blank) > 1 else 's'} no number in any row"] if blank else [])
        raise ModelMismatchError(
            f"the model was trained on column(s) {', '.join(map(repr, names))}; "
            + " and ".join(gaps))
    return dataset.metrics if have == names else dataset.metrics[names]


def _alike(dataset: Dataset, names: list[str]) -> str:
    """The file's columns that differ from ``names`` only in case or surrounding spaces,
    as a remark (headers exported otherwise), or nothing."""
    wanted = {str(n).strip().casefold() for n in names}
    alike = [c for c in dataset.frame.columns if str(c).strip().casefold() in wanted]
    return f" (it has {', '.join(map(repr, alike))}: names must match as written)" \
        if alike else ""


def sampled(values: np.ndarray) -> np.ndarray:
    """An evenly spaced sample of at most about ``STATS_SAMPLE`` of ``values`` (along the
    last axis: of each row of a 2-D array)."""
    return values[..., :: max(1, values.shape[-1] // STATS_SAMPLE)]


def robust_center_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and a scale that survives outliers: 1.4826 MAD, else std, else 1.

    Above ``STATS_SAMPLE`` values an evenly spaced sample of them stands in for all.
    """
    values = sampled(values)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    center = float(np.median(values))
    scale = 1.4826 * float(np.median(np.abs(values - center)))
    if not scale > 0:
        with np.errstate(over="ignore", invalid="ignore"):  # readings near 1e308: inf spread
            scale = float(np.std(values))
    if not scale > 0:
        scale = 1.0
    return center, scale


def robust_centers_scales(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`robust_center_scale` of each row of the 2-D ``rows``: the rows without a
    blank together (one median call for all), the others (and any without spread) one by
    one. The same numbers, in the rows' own precision, as a call a row."""
    rows = sampled(rows)
    centers, scales = np.zeros(len(rows)), np.ones(len(rows))
    whole = np.isfinite(rows).all(axis=1) & (rows.shape[1] > 0)
    if whole.any():
        block = rows[whole]
        center = np.median(block, axis=1)
        centers[whole] = center
        scales[whole] = 1.4826 * np.median(np.abs(block - center[:, None]), axis=1
                                           ).astype("float64")
    for i in np.flatnonzero(~whole | ~(scales > 0)):
        centers[i], scales[i] = robust_center_scale(rows[i])
    return centers, scales


FLOAT32_MAX = float(np.finfo(np.float32).max)


def as_float32(values: np.ndarray) -> np.ndarray:
    """Features at the forest's precision. A value beyond float32's range (a reading near
    1e308) saturates at its largest number: still the most extreme, never infinite."""
    return np.clip(values, -FLOAT32_MAX, FLOAT32_MAX).astype(np.float32)


# Reasons repeat the same few usual levels and spreads row after row: formatting each
# number once makes explaining 15,000 flagged rows twice as fast.
@lru_cache(maxsize=65_536)
def fmt(value: float) -> str:
    """A number as people write it: 3 significant digits, thousands kept whole (up to a
    billion; beyond, 3 significant digits again)."""
    if not np.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1e9:  # no one reads a 300-digit number
        return f"{value:.3g}"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".") if magnitude < 10 else f"{value:.1f}"
    return f"{value:.3g}"


def rank_features(X: np.ndarray, center: np.ndarray, scale: np.ndarray, top: int) -> np.ndarray:
    """Column indices of each row's most unusual features, most unusual first (``scale``:
    one unit per feature, or one per value)."""
    deviation = np.abs(X - center) / scale
    return np.argsort(-deviation, axis=1)[:, :top]


def level_phrase(name: str, value: float, center: float, scale: float, where: str = "") -> str:
    return f"{name} {fmt(value)}, usual {fmt(center)} ± {fmt(scale)}{where}"
