"""`vigil db prune`: old runs go whole, in short transactions; reviewed and live ones stay."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from storage.anomalies import set_review_status
from storage.retention import prune
from storage.runs import save_run
from storage.schema import (
    AlertNotification,
    Anomaly,
    DetectionRun,
    Incident,
    StreamCheckpoint,
)
from tests.storage.conftest import make_run

NOW = datetime.now(UTC)


def stored(engine, n: int, sha: str, *, days_ago: int) -> int:
    run_id = save_run(engine, run=make_run(n, file_sha256=sha * 64)).run_id
    with engine.begin() as conn:
        conn.execute(update(DetectionRun).where(DetectionRun.id == run_id).values(
            created_at=NOW - timedelta(days=days_ago)))
    return run_id


def count(engine, table, run_id: int) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(table).where(
            table.run_id == run_id))


def test_old_runs_go_whole_and_reviewed_and_live_ones_stay(engine):
    old = stored(engine, 12, "a", days_ago=200)
    reviewed = stored(engine, 6, "b", days_ago=150)
    live = stored(engine, 4, "c", days_ago=120)
    recent = stored(engine, 5, "d", days_ago=10)
    with engine.connect() as conn:
        first_of_reviewed = conn.scalar(select(func.min(Anomaly.id)).where(
            Anomaly.run_id == reviewed))
    set_review_status(engine, anomaly_ids=[first_of_reviewed], status="confirmed")
    with engine.begin() as conn:
        conn.execute(StreamCheckpoint.__table__.insert().values(
            source="lifts", run_id=live, position=200, carried=b"", updated_at=NOW))
        conn.execute(AlertNotification.__table__.insert().values(
            run_id=old, dedupe_key="k" * 64, recipients="ops@x.org", subject="s", status="sent",
            anomaly_ids=[1], attempts=1, created_at=NOW))
    incidents_of_old = count(engine, Incident, old)

    done = prune(engine, before=NOW - timedelta(days=90), batch_rows=5)  # 3 batches for 12
    assert (done.runs, done.anomalies, done.incidents) == (1, 12, incidents_of_old)
    assert done.kept_reviewed == [reviewed] and done.kept_live == [live]
    with engine.connect() as conn:
        left = set(conn.scalars(select(DetectionRun.id)))
    assert left == {reviewed, live, recent}
    for table in (Anomaly, Incident, AlertNotification):
        assert count(engine, table, old) == 0
    assert count(engine, Anomaly, recent) == 5

    again = prune(engine, before=NOW - timedelta(days=90), include_reviewed=True)
    assert again.runs == 1 and again.anomalies == 6 and again.kept_live == [live]
    with engine.connect() as conn:
        assert set(conn.scalars(select(DetectionRun.id))) == {live, recent}
