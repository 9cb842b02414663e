"""Live runs: a stream's rows stored batch by batch, exactly once.

Each batch goes in one transaction with the stream's checkpoint (``stream_checkpoints``:
how many rows are stored, and the rows the next batch needs), by the writer that holds
the stream's lease (:mod:`storage.leases`). A batch that does not start at the
checkpoint is refused with :class:`StreamConflictError`, never dropped in silence.
Flagged rows join their entity's incident while they come within its gap,
as they would in a file stored whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session

from detection import incidents
from storage import leases, months
from storage.db import insert_of, transaction
from storage.errors import StorageError, StreamConflictError
from storage.runs import RunToSave, insert_anomalies, refused_values
from storage.schema import Anomaly, DetectionRun, Incident, StreamCheckpoint
from storage.text import NAME_CHARS, clean


@dataclass(frozen=True)
class Checkpoint:
    run_id: int
    position: int
    carried: bytes
    profile: str  # of the stream's rows: a batch of another profile is not its next


@dataclass(frozen=True)
class Appended:
    run_id: int
    incident_ids: list[int]  # incidents the batch opened or extended


def checked_source(source: str) -> str:
    """A stream's name as given, or :class:`StorageError` when it would be stored as
    another name (cut to 255 characters, control characters removed): two such names
    would merge into one stream."""
    problem = ("is empty" if not source.strip()
               else f"is {len(source):,} characters long" if len(source) > NAME_CHARS
               else "holds control characters" if not source.isprintable() else None)
    if problem:
        raise StorageError(f"a stream's name is 1 to {NAME_CHARS} printable characters; "
                           f"this one {problem}")
    return source


def checkpoint(engine: Engine, *, source: str) -> Checkpoint | None:
    with transaction(engine) as session:
        row = session.get(StreamCheckpoint, checked_source(source))
        if row is None:
            return None
        profile = session.get(DetectionRun, row.run_id).profile
        return Checkpoint(row.run_id, row.position, row.carried, profile)


def streams(engine: Engine) -> pd.DataFrame:
    """Every live stream: source, run id, rows stored, flagged rows, last batch time."""
    with transaction(engine) as session:
        rows = session.execute(
            select(StreamCheckpoint.source, StreamCheckpoint.run_id, StreamCheckpoint.position,
                   DetectionRun.anomaly_count, StreamCheckpoint.updated_at)
            .join(DetectionRun, DetectionRun.id == StreamCheckpoint.run_id)
            .order_by(StreamCheckpoint.updated_at.desc())).all()
    frame = pd.DataFrame(rows, columns=["source", "run_id", "position", "flagged",
                                        "updated_at"])
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    return frame


def live_run_key(source: str, model_version: str | None) -> str:
    return hashlib.sha256(f"stream\0{source}\0{model_version}".encode()).hexdigest()


def append(engine: Engine, *, source: str, writer: leases.Writer, batch: RunToSave,
           start: int, end: int, carried: bytes,
           merge_chart: Callable[[bytes | None, bytes], bytes] | None = None) -> Appended:
    """Store one scored batch of the stream ``source`` (rows ``start`` + 1 to ``end``):
    its flagged rows in ``batch.anomalies``, its row count in ``batch.total_rows``, its
    binned normal rows (``batch.chart_data``) merged into the run's by ``merge_chart``.
    ``writer`` must hold the stream's lease; :class:`StreamConflictError` otherwise, or
    when the stream's checkpoint is not at ``start``."""
    source = checked_source(source)
    created_at = months.prepare(engine)  # the live run's, if this batch begins it
    with refused_values(f"stream {source!r}"), transaction(engine) as session:
        leases.check(session, source=source, writer=writer)
        run_id = _live_run(session, engine, source, batch, created_at)
        stored = session.execute(select(StreamCheckpoint).where(
            StreamCheckpoint.source == source).with_for_update()).scalar_one_or_none()
        position = stored.position if stored else 0
        if position != start:
            raise StreamConflictError(
                f"stream {source!r} has {position} rows stored; a batch of rows "
                f"{start + 1} to {end} does not follow them and was not stored")
        rows = batch.anomalies
        ids = _join_incidents(session, run_id, rows, batch.incident_gap,
                              batch.mapping if batch.profile == "login" else None)
        rows = rows.assign(incident_id=ids)
        insert_anomalies(session, run_id, rows)
        _add_totals(session, run_id, batch, merge_chart)
        now = datetime.now(UTC)
        if stored is None:
            session.add(StreamCheckpoint(source=source, run_id=run_id, position=end,
                                         carried=carried, updated_at=now))
        else:
            # A model activated mid-stream starts a new live run: the checkpoint follows
            stored.run_id, stored.position, stored.carried, stored.updated_at = (
                run_id, end, carried, now)
        return Appended(run_id, sorted(set(ids.tolist())))


def _live_run(session: Session, engine: Engine, source: str, batch: RunToSave,
              created_at: datetime) -> int:
    key = live_run_key(source, batch.model_version)
    insert_row = insert_of(engine)
    session.execute(insert_row(DetectionRun).values(
        run_key=key, created_at=created_at, source_name=source,
        file_sha256=hashlib.sha256(source.encode()).hexdigest(), profile=batch.profile,
        detector=batch.detector, model_version=batch.model_version,
        parameters=batch.parameters, threshold=batch.threshold,
        threshold_note=batch.threshold_note, total_rows=0, anomaly_count=0,
        severity_counts={}, entity_column=batch.entity_column, time_column=batch.time_column,
        status="live", warnings=[], columns=batch.columns,
    ).on_conflict_do_nothing(index_elements=["run_key"]))
    return session.execute(select(DetectionRun.id).where(DetectionRun.run_key == key)
                           ).scalar_one()


def _add_totals(session: Session, run_id: int, batch: RunToSave,
                merge_chart: Callable[[bytes | None, bytes], bytes] | None) -> None:
    run = session.get(DetectionRun, run_id)
    if batch.chart_data is not None and merge_chart is not None:
        run.chart_data = merge_chart(run.chart_data, batch.chart_data)
    counts = dict(run.severity_counts or {})
    for severity, n in batch.severity_counts.items():
        counts[severity] = counts.get(severity, 0) + n
    session.execute(update(DetectionRun).where(DetectionRun.id == run_id).values(
        total_rows=DetectionRun.total_rows + batch.total_rows,
        anomaly_count=DetectionRun.anomaly_count + len(batch.anomalies),
        severity_counts=counts))


def _join_incidents(session: Session, run_id: int, rows: pd.DataFrame,
                    gap: pd.Timedelta, login_mapping: dict | None = None) -> np.ndarray:
    """Each new flagged row's incident id: its entity's latest incident while the row
    comes within the gap, else a new one; a sign-in stream's rows from a campaign's
    source (``login_mapping`` names the columns) join its incident, whoever they are
    about. The grouping is the stored-file one, run over the open incidents' rows and
    the new rows together; incidents a campaign joins become one."""
    if rows.empty:
        return np.zeros(0, dtype="int64")
    open_ids = set()
    for entity in rows["entity"].drop_duplicates():
        same = Incident.entity.is_(None) if pd.isna(entity) else Incident.entity == entity
        last = session.scalar(select(func.max(Incident.id)).where(Incident.run_id == run_id,
                                                                  same))
        if last is not None:
            open_ids.add(last)
    first = pd.to_datetime(rows["event_time"], utc=True).min()
    if login_mapping is not None and pd.notna(first):  # incidents a campaign may join
        open_ids |= set(session.scalars(select(Incident.id).where(
            Incident.run_id == run_id,
            Incident.ended_at >= (first - gap).to_pydatetime())).all())
    columns = ["incident_id", "row_number", "event_time", "entity", "anomaly_score",
               "severity", "reasons", "data"]
    old = pd.DataFrame(session.execute(
        select(*(getattr(Anomaly, c) for c in columns))
        .where(Anomaly.incident_id.in_(sorted(open_ids)))).all(), columns=columns)
    both = pd.concat([old, rows.assign(incident_id=pd.NA)[columns]], ignore_index=True)
    sources = None if login_mapping is None else \
        incidents.login_sources(both, login_mapping)
    numbers = incidents.group(both, gap, sources)
    id_of = stored_grouping(session, run_id, both, numbers, sources)
    return np.array([id_of[n] for n in numbers[len(old):]], dtype="int64")


def stored_grouping(session: Session, run_id: int, rows: pd.DataFrame, numbers: np.ndarray,
                    sources: list[np.ndarray] | None) -> dict[int, int]:
    """Store a grouping of a run's flagged ``rows`` (``incident_id``: the stored incident
    of each, NA for rows not stored yet) into ``numbers``: each incident's summary
    updated, new ones inserted, incidents a campaign joins made one (their rows moved to
    the first, the others deleted). Returns each number's incident id."""
    found = incidents.summarize(rows, numbers, sources).set_index("number")
    next_number = session.scalar(select(func.coalesce(func.max(Incident.number), -1)).where(
        Incident.run_id == run_id)) + 1
    id_of: dict[int, int] = {}
    for number, incident in found.iterrows():
        members = rows.loc[numbers == number, "incident_id"].dropna().astype("int64")
        values = {k: (None if pd.isna(v) else v) for k, v in incident.items()}
        values["entity"] = clean(values["entity"], NAME_CHARS) \
            if isinstance(values["entity"], str) else None
        if len(members):
            kept, *joined = sorted(set(members))
            id_of[number] = kept
            session.execute(update(Incident).where(Incident.id == kept).values(**values))
            if joined:  # a campaign joined incidents stored apart: one from now on
                session.execute(update(Anomaly).where(Anomaly.incident_id.in_(joined))
                                .values(incident_id=kept))
                session.execute(delete(Incident).where(Incident.id.in_(joined)))
        else:
            id_of[number] = session.execute(insert(Incident).values(
                run_id=run_id, number=next_number, **values).returning(Incident.id)).scalar()
            next_number += 1
    return id_of
