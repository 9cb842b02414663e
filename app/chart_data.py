"""Chart-sized summaries of a scored file, stored with the run.

A run of a million rows must still draw fast: the normal rows of each series (entity ×
metric) are binned along time, keeping each bin's mean, usual band (5th–95th
percentile) and worst score, so every chart gets at most :data:`MAX_POINTS` points.
Flagged rows are not binned: they are stored one by one in ``anomalies``.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from detection import ScoredFrame

MAX_POINTS = 20_000
MIN_BINS_PER_SERIES = 10
SERIES_COLUMNS = ("x", "entity", "metric", "value", "lo", "hi", "score", "rows")
SCORE_METRIC = "anomaly_score"  # the series drawn when a file has no metric columns
# Scores of one row after another (logins) are noise; a bin of 25 has a mean and a band.
SCORE_BIN_ROWS = 25


def _x(result: ScoredFrame) -> pd.Series:
    if result.time is not None:
        return result.time
    return pd.Series(result.frame.index.to_numpy(), index=result.frame.index, name="row")


def _bin_series(x: pd.Series, values: pd.Series, scores: pd.Series, bins: int) -> pd.DataFrame:
    order = np.argsort(x.to_numpy(), kind="stable")
    n = len(order)
    bin_of = np.empty(n, dtype="int64")
    bin_of[order] = np.arange(n) * min(bins, n) // max(n, 1)
    # Text cells in a metric column (`ERR`) were missing values to the detector too.
    values = pd.to_numeric(values, errors="coerce")
    grouped = pd.DataFrame({"x": x.to_numpy(), "value": values.to_numpy(dtype="float64"),
                            "score": scores.to_numpy()}).groupby(bin_of, sort=True)
    out = grouped.agg(x=("x", "min"), value=("value", "mean"), score=("score", "max"),
                      rows=("value", "size"))
    quantiles = grouped["value"].quantile([0.05, 0.95]).unstack()
    out["lo"] = quantiles[0.05].to_numpy()
    out["hi"] = quantiles[0.95].to_numpy()
    return out


def series_frame(result: ScoredFrame) -> pd.DataFrame:
    """Binned normal rows per entity and metric, columns :data:`SERIES_COLUMNS`."""
    frame = result.frame
    normal = frame["is_anomaly"].to_numpy() == 0
    x = _x(result)[normal]
    # Sensors draw a line per elevator or sensor; logins one score line for all users.
    per_entity = result.profile == "sensor" and result.entity_column
    entity = (frame.loc[normal, result.entity_column].astype("string").fillna("(none)")
              if per_entity else pd.Series("all", index=x.index))
    metrics = list(result.metrics) or [SCORE_METRIC]
    series_count = max(1, entity.nunique() * len(metrics))
    bins = max(MIN_BINS_PER_SERIES, MAX_POINTS // series_count)
    parts = []
    for name, rows in entity.groupby(entity, sort=True).groups.items():
        score_bins = min(bins, max(MIN_BINS_PER_SERIES, len(rows) // SCORE_BIN_ROWS))
        for metric in metrics:
            part = _bin_series(x.loc[rows], frame.loc[rows, metric],
                               frame.loc[rows, "anomaly_score"],
                               score_bins if metric == SCORE_METRIC else bins)
            part["entity"], part["metric"] = str(name), metric
            parts.append(part)
    if not parts:
        return pd.DataFrame(columns=list(SERIES_COLUMNS))
    return pd.concat(parts, ignore_index=True)[list(SERIES_COLUMNS)]


def merge_series(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The :func:`series_frame` of successive pieces of one file as one: each series'
    adjacent bins merged down to its share of :data:`MAX_POINTS` (mean and band weighted
    by rows: the band of merged bins is the rows' average band, not a new quantile)."""
    found = [p for p in parts if len(p)]
    frame = pd.concat(found, ignore_index=True) if found else None
    if frame is None or frame.empty:
        return pd.DataFrame(columns=list(SERIES_COLUMNS))
    groups = frame.groupby(["entity", "metric"], sort=True)
    bins = max(MIN_BINS_PER_SERIES, MAX_POINTS // groups.ngroups)
    merged = []
    for (entity, metric), part in groups:
        part = part.sort_values("x", kind="stable")
        n = len(part)
        weights = part["rows"].to_numpy(dtype="float64")
        weighted = part[["value", "lo", "hi"]].mul(weights, axis=0)
        weighted[["x", "score", "rows"]] = part[["x", "score", "rows"]]
        grouped = weighted.groupby(np.arange(n) * min(bins, n) // n)
        out = grouped.agg(x=("x", "min"), value=("value", "sum"), lo=("lo", "sum"),
                          hi=("hi", "sum"), score=("score", "max"), rows=("rows", "sum"))
        out[["value", "lo", "hi"]] = out[["value", "lo", "hi"]].div(out["rows"], axis=0)
        out["entity"], out["metric"] = entity, metric
        merged.append(out)
    return pd.concat(merged, ignore_index=True)[list(SERIES_COLUMNS)]


def to_parquet(series: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    series.to_parquet(buffer, index=False)
    return buffer.getvalue()


def series_bins(result: ScoredFrame) -> bytes:
    """:func:`series_frame` as Parquet bytes (what the run stores)."""
    return to_parquet(series_frame(result))


def merged_bins(stored: bytes | None, more: bytes) -> bytes:
    """A live stream's bins with a batch's added (Parquet in, Parquet out)."""
    return to_parquet(merge_series([read_series(stored), read_series(more)]))


def read_series(data: bytes | None) -> pd.DataFrame:
    if not data:
        return pd.DataFrame(columns=list(SERIES_COLUMNS))
    return pd.read_parquet(io.BytesIO(data))


def score_counts(result: ScoredFrame) -> np.ndarray:
    """Rows per 1-point score bin, 100 bins (pieces of a file add up)."""
    return np.bincount(np.clip(result.frame["anomaly_score"].to_numpy() // 1, 0, 99)
                       .astype("int64"), minlength=100)


def histogram(counts: np.ndarray) -> list[list[float]]:
    """``[[bin start, rows], ...]`` for the non-empty bins (what the run stores)."""
    return [[float(i), int(c)] for i, c in enumerate(counts) if c]


def score_histogram(result: ScoredFrame) -> list[list[float]]:
    return histogram(score_counts(result))
