"""A run stored partition by partition: each partition once, then numbered and counted as
a run stored whole."""

from dataclasses import replace

from sqlalchemy import select

from storage import partitions
from storage.runs import save_run
from storage.schema import Anomaly, AuditEvent, DetectionRun, Incident
from tests.storage.conftest import make_run


def split(run, parts: int):
    """``run``'s flagged rows dealt into partitions by entity, as a cluster deals them."""
    entities = sorted(run.anomalies["entity"].unique())
    for p in range(parts):
        mine = run.anomalies["entity"].isin(entities[p::parts])
        yield replace(run, anomalies=run.anomalies[mine].reset_index(drop=True),
                      total_rows=int(mine.sum()) * 50)


def stored(engine, run_id):
    with engine.connect() as conn:
        rows = conn.execute(select(Anomaly.row_number, Incident.number, Incident.entity,
                                   Incident.row_count)
                            .join(Incident, Anomaly.incident_id == Incident.id)
                            .where(Anomaly.run_id == run_id)
                            .order_by(Anomaly.row_number)).all()
        run = conn.execute(select(DetectionRun).where(DetectionRun.id == run_id)).one()
    return [tuple(r) for r in rows], run


def test_partitions_stored_once_each_make_the_run_a_whole_save_makes(engine):
    run = make_run(30)
    header = replace(run, anomalies=run.anomalies.iloc[:0], total_rows=0, warnings=[])
    begun = partitions.begin(engine, header)
    assert not begun.complete and begun.saved == frozenset()
    parts = list(split(run, 2))
    assert partitions.save(engine, begun.run_id, 1, 3, parts[1])
    assert not partitions.save(engine, begun.run_id, 1, 3, parts[1])  # a retried task
    assert partitions.save(engine, begun.run_id, 2, 3, None)  # no row was dealt to it
    # A second attempt at the run finds it and what it stored.
    again = partitions.begin(engine, header)
    assert again.run_id == begun.run_id and again.saved == {1, 2} and not again.complete
    assert partitions.save(engine, begun.run_id, 0, 3, parts[0])
    assert list(partitions.stored_partitions(engine, begun.run_id)) == [0, 1, 2]
    with engine.connect() as conn:
        scoring = conn.scalar(select(DetectionRun.status))
    assert scoring == "scoring"
    partitions.finish(engine, begun.run_id, total_rows=run.total_rows, warnings=["w"],
                      score_histogram=run.score_histogram, actor="alice")
    assert partitions.begin(engine, header).complete

    whole = save_run(engine, run=replace(run, file_sha256="e" * 64))
    by_parts, finished = stored(engine, begun.run_id)
    at_once, saved = stored(engine, whole.run_id)
    assert by_parts == at_once and len(by_parts) == 30
    assert finished.status == "complete" and finished.anomaly_count == 30
    assert finished.severity_counts == saved.severity_counts
    assert finished.total_rows == run.total_rows and finished.warnings == ["w"]
    with engine.connect() as conn:
        events = conn.execute(select(AuditEvent.actor, AuditEvent.action, AuditEvent.target)
                              .where(AuditEvent.actor == "alice")).all()
    assert [tuple(e) for e in events] == [("alice", "run.save", f"run {begun.run_id}")]
