"""Exploring stored anomalies and incidents, and reviewing them."""

from __future__ import annotations

import io
from datetime import datetime

import pandas as pd

from alerts.message import (
    attachment_frame,
)
from app.vigil import Vigil
from detection.export import write_csv
from storage import (
    anomalies,
    incidents,
)
from storage.anomalies import AnomalyFilter
from storage.incidents import IncidentFilter


def query_anomalies(vigil: Vigil, filters: AnomalyFilter | None = None, *,
                    limit: int | None = 1000, offset: int = 0, with_data: bool = False,
                    oldest_first: bool = False):
    return anomalies.query_anomalies(vigil.engine, filters=filters or AnomalyFilter(),
                                     limit=limit, offset=offset, with_data=with_data,
                                     oldest_first=oldest_first)


def review(vigil: Vigil, anomaly_ids, status: str, *, reviewed_by: str | None = None,
           note: str | None = None) -> int:
    return anomalies.set_review_status(vigil.engine, anomaly_ids=anomaly_ids,
                                       status=status, reviewed_by=reviewed_by, note=note)


def query_incidents(vigil: Vigil, filters: IncidentFilter | None = None, *,
                    limit: int | None = 1000, oldest_first: bool = False) -> pd.DataFrame:
    return incidents.query_incidents(vigil.engine, filters=filters or IncidentFilter(),
                                     limit=limit, oldest_first=oldest_first)


def count_incidents(vigil: Vigil, filters: IncidentFilter) -> int:
    return incidents.count_incidents(vigil.engine, filters=filters)


def review_incidents(vigil: Vigil, incident_ids, status: str, *,
                     reviewed_by: str | None = None, note: str | None = None) -> int:
    """Review incidents; every flagged row in them gets the same status."""
    return incidents.set_review_status(vigil.engine, incident_ids=incident_ids,
                                       status=status, reviewed_by=reviewed_by, note=note)


def overview(vigil: Vigil, *, since: datetime):
    return anomalies.overview(vigil.engine, since=since)


def count_anomalies(vigil: Vigil, filters: AnomalyFilter) -> int:
    return anomalies.count_anomalies(vigil.engine, filters=filters)


def entity_counts(vigil: Vigil, filters: AnomalyFilter, *, limit: int = 20):
    return anomalies.entity_counts(vigil.engine, filters=filters, limit=limit)


def anomalies_csv(vigil: Vigil, filters: AnomalyFilter) -> bytes:
    """Every matching anomaly as formula-safe CSV: our columns, then the original row."""
    found = anomalies.query_anomalies(vigil.engine, filters=filters, limit=None,
                                      with_data=True)
    buffer = io.BytesIO()
    write_csv(attachment_frame(found), buffer)
    return buffer.getvalue()
