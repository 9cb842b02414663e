"""Query incidents and review them: a review applies to the incident and all its rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, Select, and_, func, select, update

from storage.anomalies import review_values
from storage.db import transaction
from storage.schema import Anomaly, DetectionRun, Incident
from storage.text import clean

INCIDENT_COLUMNS = ("id", "run_id", "number", "entity", "started_at", "ended_at",
                    "row_count", "peak_score", "severity", "summary", "review_status",
                    "reviewed_by", "reviewed_at", "note")


@dataclass(frozen=True)
class IncidentFilter:
    """``None`` or empty means any."""

    run_ids: Sequence[int] = ()
    ids: Sequence[int] = ()
    severities: Sequence[str] = ()
    review_statuses: Sequence[str] = ()
    entities: Sequence[str] = ()
    since: datetime | None = None  # incidents still going on at or after this time
    stored_since: datetime | None = None  # incidents of runs stored since this time
    after_id: int | None = None  # a page's cursor: ids above the previous page's last

    def apply(self, query: Select) -> Select:
        conditions = []
        if self.after_id is not None:
            conditions.append(Incident.id > self.after_id)
        if self.run_ids:
            conditions.append(Incident.run_id.in_(list(self.run_ids)))
        if self.ids:
            conditions.append(Incident.id.in_(list(self.ids)))
        if self.severities:
            conditions.append(Incident.severity.in_(list(self.severities)))
        if self.review_statuses:
            conditions.append(Incident.review_status.in_(list(self.review_statuses)))
        if self.entities:
            conditions.append(Incident.entity.in_([clean(e) for e in self.entities]))
        if self.since is not None:
            conditions.append(Incident.ended_at >= self.since)
        if self.stored_since is not None:
            query = query.join(DetectionRun, DetectionRun.id == Incident.run_id)
            conditions.append(DetectionRun.created_at >= self.stored_since)
        return query.where(and_(*conditions)) if conditions else query


def query_incidents(engine: Engine, *, filters: IncidentFilter = IncidentFilter(),
                    limit: int | None = 1000, oldest_first: bool = False) -> pd.DataFrame:
    """Matching incidents, worst first (or in the order they were stored), with
    :data:`INCIDENT_COLUMNS`."""
    columns = [getattr(Incident, c) for c in INCIDENT_COLUMNS]
    order = (Incident.id,) if oldest_first else (Incident.peak_score.desc(), Incident.id)
    query = filters.apply(select(*columns)).order_by(*order)
    if limit is not None:
        query = query.limit(limit)
    with transaction(engine) as session:
        rows = session.execute(query).all()
    frame = pd.DataFrame(rows, columns=list(INCIDENT_COLUMNS)).astype(
        {"id": "int64", "run_id": "int64", "row_count": "int64", "peak_score": "float64"})
    for name in ("started_at", "ended_at", "reviewed_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def count_incidents(engine: Engine, *, filters: IncidentFilter = IncidentFilter()) -> int:
    with transaction(engine) as session:
        return session.scalar(filters.apply(select(func.count(Incident.id)))) or 0


def set_review_status(engine: Engine, *, incident_ids: Iterable[int], status: str,
                      reviewed_by: str | None = None, note: str | None = None) -> int:
    """Review incidents and every row in them, in one transaction; returns how many
    incidents changed."""
    values = review_values(status, reviewed_by, note)
    ids = [int(i) for i in incident_ids]
    if not ids:
        return 0
    with transaction(engine) as session:
        changed = session.execute(update(Incident).where(Incident.id.in_(ids))
                                  .values(**values)).rowcount
        session.execute(update(Anomaly).where(Anomaly.incident_id.in_(ids)).values(**values))
    return changed
