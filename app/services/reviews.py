"""Exploring stored anomalies and incidents, and reviewing them."""

from __future__ import annotations

import io
from datetime import datetime

import pandas as pd

from alerts.message import (
    attachment_frame,
)
from app.errors import NotAllowedError
from app.vigil import Vigil
from detection.columns import map_columns
from detection.export import write_csv
from detection.features.login import row_values
from storage import anomalies, audit, incidents, known
from storage.anomalies import AnomalyFilter
from storage.incidents import IncidentFilter


def query_anomalies(vigil: Vigil, filters: AnomalyFilter | None = None, *,
                    limit: int | None = 1000, offset: int = 0, with_data: bool = False,
                    oldest_first: bool = False):
    vigil.require("viewer")
    return anomalies.query_anomalies(vigil.engine, filters=filters or AnomalyFilter(),
                                     limit=limit, offset=offset, with_data=with_data,
                                     oldest_first=oldest_first)


def review(vigil: Vigil, anomaly_ids, status: str, *, note: str | None = None) -> int:
    """Set the review status (and note) of flagged rows as the acting user; the audit
    log keeps who, when, and each row's status before. Returns how many changed."""
    return _review(vigil, "anomaly", anomaly_ids, status, note)


def _review(vigil: Vigil, kind: str, ids, status: str, note: str | None) -> int:
    try:
        actor = vigil.require("analyst")
    except NotAllowedError:  # a viewer's token or a crafted request: on the record
        with vigil.unit() as session:
            audit.record(session, actor=vigil.actor.name, action=f"{kind}.review_refused",
                         target=f"{kind} {', '.join(map(str, list(ids)[:20]))}",
                         after={"status": status})
        raise
    query, filters, set_status, argument = _REVIEWED[kind]
    ids = [int(i) for i in ids]
    with vigil.unit() as session:
        before = query(session, filters=filters(ids=ids), limit=None)
        changed = set_status(session, **{argument: ids}, status=status,
                             reviewed_by=actor.name, note=note)
        if status == "false_positive":
            _remember_known(session, **{argument: ids}, added_by=actor.name)
        if changed:
            audit.record(session, actor=actor.name, action=f"{kind}.review",
                         target=_target(kind, ids), before=_statuses(before),
                         after={"status": status, "note": note})
    return changed


def _remember_known(session, *, added_by: str, **ids) -> None:
    """A login row reviewed as a false positive: its country, city, IP, network, ASN
    and device become known values of its user for later runs."""
    values = []
    for row in known.reviewed_logins(session, **ids).itertuples(index=False):
        mapping = row.mapping
        if not mapping:  # a run stored before the mapping was kept: map by the synonyms
            columns = row.columns or list(row.data)
            mapping = map_columns(columns, {"user": row.entity_column}
                                  if row.entity_column in columns else None).as_dict()
        user, pairs = row_values(row.data, mapping)
        if user:
            values += [(user, key, value, row.id) for key, value in pairs]
    if values:
        known.add(session, pd.DataFrame(values, columns=["user_name", "key", "value",
                                                         "anomaly_id"]), added_by=added_by)


def list_known(vigil: Vigil, *, limit: int = 1000) -> pd.DataFrame:
    """The latest values analysts marked as normal for login users (the Models page)."""
    vigil.require("viewer")
    return known.list_known(vigil.engine, limit=limit)


def _target(kind: str, ids: list[int]) -> str:
    """``anomaly 17``, or ``3 anomalies: 17, 18, 20`` (cut at 255 characters)."""
    if len(ids) == 1:
        return f"{kind} {ids[0]}"
    plural = {"anomaly": "anomalies", "incident": "incidents"}[kind]
    return f"{len(ids)} {plural}: " + ", ".join(str(i) for i in ids)


def _statuses(found: pd.DataFrame) -> dict:
    return {"status": {str(i): str(status) for i, status in
                       zip(found["id"], found["review_status"], strict=True)}}


def query_incidents(vigil: Vigil, filters: IncidentFilter | None = None, *,
                    limit: int | None = 1000, oldest_first: bool = False) -> pd.DataFrame:
    vigil.require("viewer")
    return incidents.query_incidents(vigil.engine, filters=filters or IncidentFilter(),
                                     limit=limit, oldest_first=oldest_first)


def count_incidents(vigil: Vigil, filters: IncidentFilter) -> int:
    vigil.require("viewer")
    return incidents.count_incidents(vigil.engine, filters=filters)


def review_incidents(vigil: Vigil, incident_ids, status: str, *,
                     note: str | None = None) -> int:
    """Review incidents as the acting user; every flagged row in them gets the same
    status, and the audit log keeps it."""
    return _review(vigil, "incident", incident_ids, status, note)


# What reviewing each kind reads (for the audit log's "before") and sets.
_REVIEWED = {
    "anomaly": (anomalies.query_anomalies, AnomalyFilter, anomalies.set_review_status,
                "anomaly_ids"),
    "incident": (incidents.query_incidents, IncidentFilter, incidents.set_review_status,
                 "incident_ids"),
}


def overview(vigil: Vigil, *, since: datetime):
    vigil.require("viewer")
    return anomalies.overview(vigil.engine, since=since)


def count_anomalies(vigil: Vigil, filters: AnomalyFilter) -> int:
    vigil.require("viewer")
    return anomalies.count_anomalies(vigil.engine, filters=filters)


def entity_counts(vigil: Vigil, filters: AnomalyFilter, *, limit: int = 20):
    vigil.require("viewer")
    return anomalies.entity_counts(vigil.engine, filters=filters, limit=limit)


# What Explore's table shows, in its order (the review first), times in UTC.
EXPORT_COLUMNS = ("review_status", "severity", "anomaly_score", "event_time", "entity",
                  "reasons", "note", "reviewed_by", "reviewed_at", "run_id", "incident_id",
                  "row_number")


def anomalies_csv(vigil: Vigil, filters: AnomalyFilter) -> bytes:
    """Every matching anomaly as formula-safe CSV: our columns, then the original row.
    The export is in the audit log (who took which rows out)."""
    actor = vigil.require("viewer")
    found = anomalies.query_anomalies(vigil.engine, filters=filters, limit=None,
                                      with_data=True)
    buffer = io.BytesIO()
    write_csv(attachment_frame(found, EXPORT_COLUMNS), buffer)
    with vigil.unit() as session:
        audit.record(session, actor=actor.name, action="anomalies.export",
                     target=f"{len(found)} anomalies",
                     after={"filters": {k: v for k, v in vars(filters).items() if v}})
    return buffer.getvalue()
