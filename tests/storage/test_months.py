"""On PostgreSQL, anomalies are range-partitioned by the month their run was stored:
a month of old runs is pruned by dropping its partition; Adminer sees one table."""

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import inspect, select, text, update

from storage import db, known, months
from storage.anomalies import set_review_status
from storage.partitions import begin, save
from storage.retention import prune
from storage.runs import save_run
from storage.schema import Anomaly, DetectionRun, KnownValue
from tests.storage.conftest import make_run

pytestmark = pytest.mark.postgres

JANUARY = datetime(2026, 1, 15, 12, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 10, 8, tzinfo=UTC)


@pytest.fixture
def pg(postgres_url):
    from tests.conftest import _empty_tables

    engine = db.make_engine(postgres_url)
    _empty_tables(engine)
    with engine.begin() as conn:  # months made by earlier tests' runs
        for name in conn.scalars(text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'anomalies'::regclass")).all():
            conn.execute(text(f"DROP TABLE {months.SCHEMA}.{name}"))
    yield engine
    engine.dispose()


def partitions(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.scalars(text(
            "SELECT n.nspname || '.' || c.relname FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = "
            "c.relnamespace WHERE i.inhparent = 'anomalies'::regclass")).all())


def stored_in(engine, month: datetime, sha: str, n: int = 6) -> int:
    """A run stored in ``month`` (its rows moved into that month's partition)."""
    run_id = save_run(engine, run=make_run(n, file_sha256=sha * 64)).run_id
    with db.transaction(engine) as session:
        months.ensure(session, month)
        session.execute(update(DetectionRun).where(DetectionRun.id == run_id)
                        .values(created_at=month))
        session.execute(update(Anomaly).where(Anomaly.run_id == run_id)
                        .values(run_created_at=month))
    return run_id


def test_a_run_lands_in_its_months_partition_and_adminer_sees_one_table(pg):
    run_id = save_run(pg, run=make_run(8)).run_id
    this_month = f"anomaly_months.{months.name(datetime.now(UTC))}"
    assert partitions(pg) == [this_month]
    with pg.connect() as conn:
        assert conn.scalar(text(f"SELECT count(*) FROM {this_month}")) == 8
        assert conn.scalar(text("SELECT count(*) FROM pg_partitioned_table WHERE "
                                "partrelid = 'anomalies'::regclass")) == 1
        assert conn.scalar(select(Anomaly.run_id).limit(1)) == run_id
    public = set(inspect(pg).get_table_names())
    assert "anomalies" in public and not any(t.startswith("anomalies_") for t in public)


def test_the_first_runs_of_a_month_stored_at_once_do_not_deadlock(pg):
    """A month's partition is made before its run's rows are stored, in a transaction of
    its own: made inside a save that held locks on incidents, two saves at once (the
    partitions of a cluster run, two uploads) each waited for the other."""
    this_month = [f"anomaly_months.{months.name(datetime.now(UTC))}"]
    run = make_run(40, file_sha256="c" * 64)
    begun = begin(pg, replace(run, anomalies=run.anomalies.iloc[:0]))
    assert partitions(pg) == this_month  # with the run, before any of its rows

    def at_once(store, items):
        ready = threading.Barrier(len(items))
        with ThreadPoolExecutor(len(items)) as pool:
            return list(pool.map(lambda item: (ready.wait(), store(item))[1], items))

    parts = at_once(lambda p: save(pg, begun.run_id, p, 4, replace(
        run, anomalies=run.anomalies.iloc[p::4])), range(4))
    assert parts == [True] * 4
    for name in partitions(pg):
        with pg.begin() as conn:
            conn.execute(text(f"DROP TABLE {name}"))
    saved = at_once(lambda sha: save_run(pg, run=make_run(30, file_sha256=sha * 64)),
                    ["d", "e", "f"])
    assert all(s.created for s in saved) and partitions(pg) == this_month
    with pg.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM anomalies")) == 90


def test_pruning_a_month_drops_its_partition_and_keeps_a_month_with_a_review(pg):
    january = [stored_in(pg, JANUARY, "a"), stored_in(pg, JANUARY, "b")]
    february = [stored_in(pg, FEBRUARY, "c"), stored_in(pg, FEBRUARY, "d")]
    with pg.connect() as conn:
        reviewed = conn.scalar(select(Anomaly.id).where(Anomaly.run_id == february[0]))
        marked = conn.scalar(select(Anomaly.id).where(Anomaly.run_id == january[0]))
    set_review_status(pg, anomaly_ids=[reviewed], status="confirmed", reviewed_by="ana")
    known.add(pg, _known_row(marked), added_by="ana")
    done = prune(pg, before=datetime(2026, 3, 1, tzinfo=UTC))
    assert done.runs == 3 and done.anomalies == 18 and done.kept_reviewed == [february[0]]
    # January went whole: its partition is gone; February keeps the reviewed run's rows
    # (this month's, where the runs were first stored, stays: empty, the month goes on).
    left = partitions(pg)
    assert "anomaly_months.anomalies_2026_01" not in left
    assert "anomaly_months.anomalies_2026_02" in left
    with pg.connect() as conn:
        left = conn.scalars(select(DetectionRun.id)).all()
        assert left == [february[0]]
        assert conn.scalar(text("SELECT count(*) FROM anomalies")) == 6
        # The known value stays; the row it pointed at is gone.
        assert conn.execute(select(KnownValue.value, KnownValue.anomaly_id)).all() == [
            ("Oslo", None)]


def _known_row(anomaly_id: int):
    import pandas as pd

    return pd.DataFrame({"user_name": ["u1"], "key": ["city"], "value": ["Oslo"],
                         "anomaly_id": [anomaly_id]})


def test_the_migration_moves_stored_rows_into_partitions_and_back(pg):
    january = stored_in(pg, JANUARY, "e")
    config = db.alembic_config(pg)
    command.downgrade(config, "0013")
    with pg.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM anomalies WHERE run_id = :r"),
                           {"r": january}) == 6
        assert conn.scalar(text("SELECT count(*) FROM pg_partitioned_table")) == 0
    command.upgrade(config, "head")
    assert partitions(pg) == ["anomaly_months.anomalies_2026_01"]  # the months with runs
    with pg.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM anomaly_months.anomalies_2026_01")) == 6
        # New ids continue the sequence the rows had.
        before = conn.scalar(text("SELECT max(id) FROM anomalies"))
    later = save_run(pg, run=make_run(2, file_sha256="f" * 64)).run_id
    with pg.connect() as conn:
        assert conn.scalar(select(Anomaly.id).where(Anomaly.run_id == later)
                           .order_by(Anomaly.id).limit(1)) > before
