"""Incidents: flagged rows of one entity that follow each other closely are one event.

A burst of 40 failed logins, or a humidity sensor out of range for twenty minutes, is
one thing for an analyst to look at, not forty. Rows of the same entity (user, elevator,
sensor; the whole file when there is none) join the current incident while each comes
within ``gap`` of the previous one; files without timestamps use row numbers instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from detection.calibration import SEVERITIES

# Flagged rows further apart than this start a new incident (settings may change it).
DEFAULT_GAP = {"sensor": pd.Timedelta(minutes=30), "generic": pd.Timedelta(minutes=30),
               "login": pd.Timedelta(hours=2)}
GAP_ROWS = 5  # no timestamps: flagged rows at most this many rows apart join
RANK = {severity: i for i, severity in enumerate(SEVERITIES)}
NO_ENTITY = "(file)"


def group(anomalies: pd.DataFrame, gap: pd.Timedelta) -> np.ndarray:
    """The incident number (0, 1, ...) of each flagged row.

    ``anomalies`` has ``row_number``, ``event_time`` (may be all missing) and ``entity``
    (may be missing). Incidents are numbered by their first row in (entity, time) order.
    """
    n = len(anomalies)
    if n == 0:
        return np.zeros(0, dtype="int64")
    entity = pd.Series(anomalies["entity"], dtype="string").fillna(NO_ENTITY).to_numpy()
    times = _utc(anomalies["event_time"])
    rows = anomalies["row_number"].to_numpy(dtype="int64")
    if times.notna().all():
        position = times.to_numpy(dtype="datetime64[ns]").astype("int64")
        limit = int(pd.Timedelta(gap).value)
    else:  # no timestamps (or some missing): distance in rows
        position, limit = rows, GAP_ROWS
    entity_code = pd.factorize(entity)[0]
    order = np.lexsort((rows, position, entity_code))
    same_entity = entity_code[order][1:] == entity_code[order][:-1]
    close = np.diff(position[order]) <= limit
    starts = np.concatenate([[True], ~(same_entity & close)])
    numbers = np.empty(n, dtype="int64")
    numbers[order] = np.cumsum(starts) - 1
    return numbers


def _utc(values) -> pd.Series:
    """Times as UTC without a zone (NaT where missing)."""
    return pd.to_datetime(pd.Series(values), utc=True).dt.tz_convert(None)


def summarize(anomalies: pd.DataFrame, numbers: np.ndarray) -> pd.DataFrame:
    """One row per incident: ``number``, ``entity``, ``started_at``, ``ended_at``,
    ``row_count``, ``peak_score``, ``severity`` (the highest) and ``summary`` (the peak
    row's leading reason, with the incident's extent)."""
    columns = ["number", "entity", "started_at", "ended_at", "row_count", "peak_score",
               "severity", "summary"]
    if len(anomalies) == 0:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame({
        "number": numbers,
        "entity": pd.Series(anomalies["entity"], dtype="object").to_numpy(),
        "time": _utc(anomalies["event_time"]).to_numpy(dtype="datetime64[ns]"),
        "row": anomalies["row_number"].to_numpy(dtype="int64"),
        "score": anomalies["anomaly_score"].to_numpy(dtype="float64"),
        "rank": pd.Series(anomalies["severity"]).map(RANK).fillna(0).to_numpy(dtype="int64"),
        "reasons": pd.Series(anomalies["reasons"], dtype="object").fillna("").to_numpy(),
    })
    by = frame.groupby("number", sort=True)
    # The peak row of each incident (the first of equal scores), in incident order.
    peak = frame.loc[frame.sort_values(["number", "score", "row"],
                                       ascending=[True, False, True])
                     .drop_duplicates("number").index]
    out = pd.DataFrame({
        "number": by.size().index.to_numpy(),
        "entity": peak["entity"].to_numpy(),
        "started_at": by["time"].min().dt.tz_localize("UTC").to_numpy(dtype=object),
        "ended_at": by["time"].max().dt.tz_localize("UTC").to_numpy(dtype=object),
        "row_count": by.size().to_numpy(),
        "peak_score": by["score"].max().to_numpy(),
        "severity": [SEVERITIES[i] for i in by["rank"].max().to_numpy()],
        "first_row": by["row"].min().to_numpy(),
        "last_row": by["row"].max().to_numpy(),
        "lead": [r.split("; ")[0] for r in peak["reasons"]],
    })
    out["summary"] = [_summary(row) for row in out.itertuples()]
    return out[columns]


def _summary(incident) -> str:
    lead = incident.lead or "unusual combination of features"
    if incident.row_count == 1:
        return lead
    if pd.notna(incident.started_at):
        span = pd.Timestamp(incident.ended_at) - pd.Timestamp(incident.started_at)
        minutes = max(int(span.total_seconds() // 60), 1)
        extent = f"{incident.row_count} rows over {minutes} min"
    else:
        extent = f"{incident.row_count} rows, rows {incident.first_row}-{incident.last_row}"
    return f"{lead} ({extent})"
