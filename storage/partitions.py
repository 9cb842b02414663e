"""A run stored partition by partition: a dataset scored on a cluster (`--engine dask`).

The run's row is stored first (status ``scoring``); each partition's incidents and flagged
rows are then stored in a transaction of their own, together with the partition's row of
``run_partitions``: a partition stored once is never stored again (a worker that died
after committing, then scored again by the cluster, adds nothing), and one that died
before committing left nothing behind. When every partition is in, the run's incidents
are numbered in (entity, time) order, as a run stored at once numbers them, and its totals
and status (``complete``) are set, with the audit log's ``run.save``, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.engine import make_url

from detection import incidents
from storage import audit, months
from storage.db import insert_of, make_engine, transaction
from storage.live import stored_grouping
from storage.runs import (
    RunToSave,
    _insert_ignoring_duplicate,
    _insert_incidents,
    insert_anomalies,
    refused_values,
    run_values,
)
from storage.schema import Anomaly, DetectionRun, RunPartition

SCORING = "scoring"  # the status of a run whose partitions are being stored


@dataclass(frozen=True)
class Begun:
    run_id: int
    complete: bool  # stored whole before: nothing to do
    saved: frozenset[int]  # partitions stored by an earlier attempt at the run


def begin(engine: Engine, header: RunToSave) -> Begun:
    """The run's row, stored with status ``scoring`` (its flagged rows come partition by
    partition); a run stored before, whole or in part, is found by its key."""
    values = run_values(header, months.prepare(engine), status=SCORING)
    with refused_values(f"run {header.source_name!r}"), transaction(engine) as session:
        run_id = session.execute(
            _insert_ignoring_duplicate(engine).values(**values)
            .returning(DetectionRun.id)).scalar()
        if run_id is not None:
            return Begun(run_id, False, frozenset())
        run_id, status = session.execute(
            select(DetectionRun.id, DetectionRun.status)
            .where(DetectionRun.run_key == header.run_key)).one()
        saved = session.scalars(select(RunPartition.partition)
                                .where(RunPartition.run_id == run_id)).all()
    return Begun(run_id, status != SCORING, frozenset(saved))


def _stored_number(partition: int, partitions: int):
    """A partition's incident numbers while its run is scoring: negative and apart from
    every other partition's (numbered in order when the run completes)."""
    return lambda numbers: -(numbers * partitions + partition) - 1


def save(engine: Engine, run_id: int, partition: int, partitions: int,
         part: RunToSave | None) -> bool:
    """Store a partition's incidents and flagged rows once (False: stored before);
    ``part`` None: a partition no row was dealt to, recorded as done."""
    with refused_values(f"partition {partition} of run {run_id}"), \
            transaction(engine) as session:
        claimed = session.execute(
            insert_of(engine)(RunPartition).values(
                run_id=run_id, partition=partition,
                row_count=0 if part is None else part.total_rows,
                anomaly_count=0 if part is None else len(part.anomalies))
            .on_conflict_do_nothing(index_elements=["run_id", "partition"])
            .returning(RunPartition.partition)).scalar()
        if claimed is None or part is None:
            return claimed is not None
        ids = _insert_incidents(session, run_id, part, _stored_number(partition, partitions))
        insert_anomalies(session, run_id, part.anomalies.assign(incident_id=ids))
    return True


# Numbered as detection.incidents.group numbers a whole run's: entities in the order of
# their first flagged row, then by time, then by first row.
_NUMBERED = text("""
    UPDATE incidents SET number = ordered.n
    FROM (SELECT id, row_number() OVER (ORDER BY entity_first, started_at, first_row, id)
                 - 1 AS n
          FROM (SELECT i.id, i.started_at, f.first_row,
                       MIN(f.first_row) OVER (PARTITION BY i.entity) AS entity_first
                FROM incidents AS i
                JOIN (SELECT incident_id, MIN(row_number) AS first_row FROM anomalies
                      WHERE run_id = :run_id GROUP BY incident_id) AS f
                  ON f.incident_id = i.id
                WHERE i.run_id = :run_id) AS found) AS ordered
    WHERE incidents.id = ordered.id""")


def _join_campaigns(session, run_id: int, gap: pd.Timedelta | None) -> None:
    """A sign-in run's campaigns across partitions (users are dealt apart): incidents of
    users from one source joined as one run stored at once joins them."""
    run = session.get(DetectionRun, run_id)
    if gap is None or run.profile != "login" or not (run.mapping or {}).get("ip"):
        return
    columns = ["incident_id", "row_number", "event_time", "entity", "anomaly_score",
               "severity", "reasons", "data"]
    rows = pd.DataFrame(session.execute(
        select(*(getattr(Anomaly, c) for c in columns)).where(Anomaly.run_id == run_id)
        .order_by(Anomaly.row_number)).all(), columns=columns)
    sources = incidents.login_sources(rows, run.mapping)
    if rows.empty or sources is None:
        return
    numbers = incidents.group(rows, gap, sources)
    apart = pd.Series(rows["incident_id"].to_numpy()).groupby(numbers).nunique()
    joined = np.isin(numbers, apart[apart > 1].index)
    if joined.any():
        stored_grouping(session, run_id, rows[joined].reset_index(drop=True),
                        numbers[joined], [s[joined] for s in sources])


def finish(engine: Engine, run_id: int, *, total_rows: int, warnings: list[str],
           score_histogram: list | None, actor: str | None,
           incident_gap: pd.Timedelta | None = None) -> None:
    """The run complete: a sign-in run's campaigns joined across partitions (with its
    ``incident_gap``), its incidents numbered, its totals counted from what is stored."""
    with transaction(engine) as session:
        _join_campaigns(session, run_id, incident_gap)
        session.execute(_NUMBERED, {"run_id": run_id})
        counts = dict(session.execute(
            select(Anomaly.severity, func.count()).where(Anomaly.run_id == run_id)
            .group_by(Anomaly.severity)).all())
        flagged = int(sum(counts.values()))
        session.execute(update(DetectionRun).where(DetectionRun.id == run_id).values(
            status="complete", total_rows=total_rows, anomaly_count=flagged,
            severity_counts={k: int(v) for k, v in counts.items()}, warnings=warnings,
            score_histogram=score_histogram))
        if actor is not None:
            source, profile, model = session.execute(
                select(DetectionRun.source_name, DetectionRun.profile,
                       DetectionRun.model_version).where(DetectionRun.id == run_id)).one()
            audit.record(session, actor=actor, action="run.save", target=f"run {run_id}",
                         after={"source": source, "profile": profile, "rows": total_rows,
                                "flagged": flagged, "model": model or "fitted on the file",
                                "engine": "dask"})


_ENGINES: dict[str, Engine] = {}


def engine_for(url: str) -> Engine:
    """One engine per database a worker process writes to, made on first use."""
    key = make_url(url).render_as_string(hide_password=False)
    if key not in _ENGINES:
        _ENGINES[key] = make_engine(url)
    return _ENGINES[key]


def stored_partitions(engine: Engine, run_id: int) -> np.ndarray:
    """The partitions of a run stored so far, in order."""
    with transaction(engine) as session:
        return np.asarray(session.scalars(
            select(RunPartition.partition).where(RunPartition.run_id == run_id)
            .order_by(RunPartition.partition)).all(), dtype="int64")
