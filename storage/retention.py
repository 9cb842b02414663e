"""Keeping the database small: old runs go, with their anomalies, incidents, inputs and
alert log, in short transactions (``vigil db prune``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, exists, func, or_, select, text, update

from storage import months
from storage.db import Bind, transaction
from storage.schema import Anomaly, DetectionRun, Incident, KnownValue, StreamCheckpoint

BATCH_ROWS = 10_000  # anomalies deleted a transaction: no lock held for long


@dataclass
class Pruned:
    """What a prune removed, and the runs it kept back."""

    runs: int = 0
    anomalies: int = 0
    incidents: int = 0
    kept_reviewed: list[int] = field(default_factory=list)  # old runs with a review
    kept_live: list[int] = field(default_factory=list)  # the runs live streams write to


def prune(bind: Bind, *, before: datetime, include_reviewed: bool = False,
          batch_rows: int = BATCH_ROWS) -> Pruned:
    """Delete the runs stored before ``before``, oldest first, each with what belongs to
    it (anomalies, incidents, kept rows, alert log: ``ON DELETE CASCADE``). Kept back:
    runs a live stream still writes to, and (unless ``include_reviewed``) runs with an
    anomaly or incident someone reviewed. Anomalies go ``batch_rows`` a transaction, then
    the run in one more: a prune never holds a lock for long, and one stopped half-way
    leaves whole runs behind it."""
    reviewed = or_(
        exists().where(Anomaly.run_id == DetectionRun.id, Anomaly.review_status != "new"),
        exists().where(Incident.run_id == DetectionRun.id, Incident.review_status != "new"))
    live = exists().where(StreamCheckpoint.run_id == DetectionRun.id)
    with transaction(bind) as session:
        old = session.execute(
            select(DetectionRun.id, reviewed.label("reviewed"), live.label("live"),
                   DetectionRun.created_at)
            .where(DetectionRun.created_at < before).order_by(DetectionRun.id)).all()
    done = Pruned(kept_live=[run for run, _, is_live, _ in old if is_live])
    done.kept_reviewed = [run for run, was_reviewed, is_live, _ in old
                          if was_reviewed and not is_live and not include_reviewed]
    kept = set(done.kept_live) | set(done.kept_reviewed)
    gone_whole = _drop_months(bind, before, old, kept, done)
    for run_id in (run for run, *_ in old if run not in kept):
        while run_id not in gone_whole:
            with transaction(bind) as session:
                batch = select(Anomaly.id).where(Anomaly.run_id == run_id).limit(batch_rows)
                session.execute(update(KnownValue).where(KnownValue.anomaly_id.in_(batch))
                                .values(anomaly_id=None))
                gone = session.execute(delete(Anomaly).where(Anomaly.id.in_(batch))).rowcount
            done.anomalies += gone
            if gone < batch_rows:
                break
        with transaction(bind) as session:
            done.incidents += session.scalar(
                select(func.count()).select_from(Incident).where(Incident.run_id == run_id))
            session.execute(delete(DetectionRun).where(DetectionRun.id == run_id))
        done.runs += 1
    return done


def _drop_months(bind: Bind, before: datetime, old: list, kept: set[int],
                 done: Pruned) -> set[int]:
    """PostgreSQL: the month partitions of ``anomalies`` that hold only runs this prune
    deletes (the month over before ``before``, none of its runs kept), dropped whole;
    returns the runs whose anomalies went with them."""
    with transaction(bind) as session:
        if session.get_bind().dialect.name != "postgresql":
            return set()
        found = set(session.scalars(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'anomalies'::regclass")).all())
    by_month: dict[str, tuple[datetime, list[int]]] = {}
    for run_id, _, _, created in old:
        by_month.setdefault(months.name(created), (months.end(created), []))[1].append(run_id)
    gone: set[int] = set()
    for partition, (over, runs) in sorted(by_month.items()):
        if partition not in found or over > before or kept & set(runs):
            continue  # the month goes on after ``before``, or keeps a run: rows go one by one
        qualified = f"{months.SCHEMA}.{partition}"
        with transaction(bind) as session:
            done.anomalies += session.scalar(text(f"SELECT count(*) FROM {qualified}"))
            session.execute(text(f"UPDATE known_values SET anomaly_id = NULL WHERE anomaly_id "
                                 f"IN (SELECT id FROM {qualified})"))
            session.execute(text(f"DROP TABLE {qualified}"))
        gone |= set(runs)
    return gone
