"""Query stored anomalies, review them, and count them for the overview."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine, Select, and_, func, select, update

from storage.db import transaction
from storage.errors import StorageError
from storage.schema import CLOSED_STATUSES, REVIEW_STATUSES, Anomaly, DetectionRun
from storage.text import NAME_CHARS, clean

ANOMALY_COLUMNS = ("id", "run_id", "incident_id", "row_number", "event_time", "entity",
                   "anomaly_score", "severity", "reasons", "review_status", "reviewed_by",
                   "reviewed_at", "note")


@dataclass(frozen=True)
class AnomalyFilter:
    """What the dashboard and the CLI filter on; ``None`` or empty means any."""

    run_ids: Sequence[int] = ()
    since: datetime | None = None
    until: datetime | None = None
    severities: Sequence[str] = ()
    entities: Sequence[str] = ()
    min_score: float | None = None
    max_score: float | None = None
    review_statuses: Sequence[str] = ()
    reason_text: str | None = None
    ids: Sequence[int] = ()
    incident_ids: Sequence[int] = ()
    after_id: int | None = None  # a page's cursor: ids above the previous page's last

    def apply(self, query: Select) -> Select:
        conditions = []
        if self.after_id is not None:
            conditions.append(Anomaly.id > self.after_id)
        if self.run_ids:
            conditions.append(Anomaly.run_id.in_(list(self.run_ids)))
        if self.ids:
            conditions.append(Anomaly.id.in_(list(self.ids)))
        if self.incident_ids:
            conditions.append(Anomaly.incident_id.in_(list(self.incident_ids)))
        if self.since is not None:
            conditions.append(Anomaly.event_time >= self.since)
        if self.until is not None:
            conditions.append(Anomaly.event_time <= self.until)
        if self.severities:
            conditions.append(Anomaly.severity.in_(list(self.severities)))
        if self.entities:
            conditions.append(Anomaly.entity.in_([clean(e) for e in self.entities]))
        if self.min_score is not None:
            conditions.append(Anomaly.anomaly_score >= self.min_score)
        if self.max_score is not None:
            conditions.append(Anomaly.anomaly_score <= self.max_score)
        if self.review_statuses:
            conditions.append(Anomaly.review_status.in_(list(self.review_statuses)))
        if self.reason_text:
            # Stored text has no NUL (PostgreSQL refuses it): neither may a search.
            words = clean(self.reason_text).strip().lower().split()
            conditions.extend(func.lower(Anomaly.reasons).contains(w, autoescape=True)
                              for w in words)
        return query.where(and_(*conditions)) if conditions else query


def query_anomalies(engine: Engine, *, filters: AnomalyFilter = AnomalyFilter(),
                    limit: int | None = 1000, offset: int = 0,
                    with_data: bool = False, oldest_first: bool = False) -> pd.DataFrame:
    """Matching anomalies, worst first (or in the order they were stored, for paging by
    ``after_id``), as a frame with :data:`ANOMALY_COLUMNS` (plus ``data``, the original
    row, when asked)."""
    columns = [getattr(Anomaly, c) for c in ANOMALY_COLUMNS]
    if with_data:
        columns += [Anomaly.data, DetectionRun.columns.label("file_columns")]
    order = (Anomaly.id,) if oldest_first else (Anomaly.anomaly_score.desc(), Anomaly.id)
    query = filters.apply(select(*columns)).order_by(*order)
    if with_data:
        query = query.join(DetectionRun, DetectionRun.id == Anomaly.run_id)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    with transaction(engine) as session:
        rows = session.execute(query).all()
    frame = pd.DataFrame(rows, columns=[c.key for c in columns]).astype(
        {"id": "int64", "run_id": "int64", "incident_id": "Int64", "row_number": "int64",
         "anomaly_score": "float64"})
    for name in ("event_time", "reviewed_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    if with_data:
        frame["data"] = [_in_file_order(d, order) for d, order in
                         zip(frame["data"], frame.pop("file_columns"), strict=True)]
    return frame


def _in_file_order(data: dict | None, order: list | None) -> dict | None:
    """The original row with its columns in file order (JSONB stores keys sorted)."""
    if not data or not order:
        return data
    return {**{k: data[k] for k in order if k in data}, **data}


def latest_event_time(engine: Engine, *, run_id: int) -> datetime | None:
    """The time of a run's newest flagged row."""
    with transaction(engine) as session:
        found = session.scalar(select(func.max(Anomaly.event_time))
                               .where(Anomaly.run_id == run_id))
    return None if found is None else pd.Timestamp(found).tz_convert(UTC) \
        if pd.Timestamp(found).tzinfo else pd.Timestamp(found, tz=UTC)


def count_anomalies(engine: Engine, *, filters: AnomalyFilter = AnomalyFilter()) -> int:
    with transaction(engine) as session:
        return session.scalar(filters.apply(select(func.count(Anomaly.id)))) or 0


def set_review_status(engine: Engine, *, anomaly_ids: Iterable[int], status: str,
                      reviewed_by: str | None = None, note: str | None = None) -> int:
    """Set the review status of one or many anomalies; returns how many changed."""
    values = review_values(status, reviewed_by, note)
    ids = [int(i) for i in anomaly_ids]
    if not ids:
        return 0
    with transaction(engine) as session:
        result = session.execute(update(Anomaly).where(Anomaly.id.in_(ids)).values(**values))
        return result.rowcount


def review_values(status: str, reviewed_by: str | None, note: str | None) -> dict:
    """The columns a review sets (on anomalies and on incidents), checked."""
    if status not in REVIEW_STATUSES:
        raise StorageError(f"review status must be one of {', '.join(REVIEW_STATUSES)}; "
                           f"got {status!r}")
    reviewed_by = clean(reviewed_by)
    if reviewed_by is not None and len(reviewed_by) > NAME_CHARS:
        raise StorageError(f"'reviewed by' is at most {NAME_CHARS} characters; got "
                           f"{len(reviewed_by)}")
    values = {"review_status": status, "reviewed_by": reviewed_by,
              "reviewed_at": datetime.now(UTC)}
    if note is not None:
        values["note"] = clean(note)
    return values


def overview(engine: Engine, *, since: datetime) -> dict[str, pd.DataFrame]:
    """Counts for the overview page, for runs stored since ``since``.

    ``per_day``: anomalies per day they happened (UTC; the day their run was stored for
    rows without a time), severity and profile; ``review``: open (``new``) versus
    reviewed per severity; ``runs``: runs per profile.
    """
    day = func.date(func.coalesce(Anomaly.event_time, DetectionRun.created_at))
    recent = DetectionRun.created_at >= since
    with transaction(engine) as session:
        per_day = session.execute(
            select(day.label("day"), Anomaly.severity, DetectionRun.profile,
                   func.count(Anomaly.id).label("anomalies"))
            .join(DetectionRun, DetectionRun.id == Anomaly.run_id).where(recent)
            .group_by(day, Anomaly.severity, DetectionRun.profile)).all()
        review = session.execute(
            select(Anomaly.severity, Anomaly.review_status,
                   func.count(Anomaly.id).label("anomalies"))
            .join(DetectionRun, DetectionRun.id == Anomaly.run_id).where(recent)
            .group_by(Anomaly.severity, Anomaly.review_status)).all()
        runs = session.execute(
            select(DetectionRun.profile, func.count(DetectionRun.id).label("runs"),
                   func.coalesce(func.sum(DetectionRun.total_rows), 0).label("rows"))
            .where(recent).group_by(DetectionRun.profile)).all()
    per_day_frame = pd.DataFrame(per_day, columns=["day", "severity", "profile", "anomalies"])
    per_day_frame["day"] = pd.to_datetime(per_day_frame["day"])
    review_frame = pd.DataFrame(review, columns=["severity", "review_status", "anomalies"])
    review_frame["state"] = review_frame["review_status"].map(
        lambda s: "open" if s == "new" else "reviewed")
    return {"per_day": per_day_frame, "review": review_frame,
            "runs": pd.DataFrame(runs, columns=["profile", "runs", "rows"])}


def entity_counts(engine: Engine, *, filters: AnomalyFilter = AnomalyFilter(),
                  limit: int = 20) -> pd.DataFrame:
    """Anomalies per entity (user, elevator, sensor), most first."""
    query = (filters.apply(select(Anomaly.entity, func.count(Anomaly.id).label("anomalies"),
                                  func.max(Anomaly.anomaly_score).label("max_score")))
             .where(Anomaly.entity.is_not(None)).group_by(Anomaly.entity)
             .order_by(func.count(Anomaly.id).desc()).limit(limit))
    with transaction(engine) as session:
        return pd.DataFrame(session.execute(query).all(),
                            columns=["entity", "anomalies", "max_score"])


def open_anomaly_ids(engine: Engine, *, run_id: int, severities: Sequence[str]) -> list[int]:
    """Anomalies of a run at the given severities that analysts have not closed."""
    query = (select(Anomaly.id).where(Anomaly.run_id == run_id,
                                      Anomaly.severity.in_(list(severities)),
                                      Anomaly.review_status.not_in(CLOSED_STATUSES))
             .order_by(Anomaly.anomaly_score.desc()))
    with transaction(engine) as session:
        return list(session.scalars(query))
