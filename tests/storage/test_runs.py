"""Runs are stored once, whole, in one transaction."""

import multiprocessing

import pandas as pd
import pytest
from sqlalchemy import func, select

from storage import db
from storage.anomalies import query_anomalies
from storage.errors import RefusedValueError
from storage.runs import get_run, list_runs, save_run
from storage.schema import Anomaly, DetectionRun
from tests.storage.conftest import make_run


def counts(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.scalar(select(func.count()).select_from(DetectionRun)),
                conn.scalar(select(func.count()).select_from(Anomaly)))


def test_save_stores_the_run_with_totals_and_every_flagged_row(engine, run):
    outcome = save_run(engine, run=run)
    assert outcome.created
    stored = get_run(engine, run_id=outcome.run_id)
    assert (stored.source_name, stored.total_rows, stored.anomaly_count) == \
        ("readings.csv", 500, 10)
    assert stored.severity_counts == run.severity_counts
    assert stored.parameters == {"contamination": 0.015}
    assert stored.warnings == run.warnings and stored.score_histogram == run.score_histogram
    rows = query_anomalies(engine, with_data=True, limit=None).sort_values("row_number")
    assert rows["row_number"].tolist() == list(range(1, 11))
    assert rows["entity"].tolist() == run.anomalies["entity"].tolist()
    assert rows["event_time"].iloc[0] == pd.Timestamp("2025-06-01", tz="UTC")
    assert rows["data"].iloc[0] == {"timestamp": "2025-06-01 00:00", "vibration": 60.0,
                                    "note": "=cmd()"}
    assert set(rows["review_status"]) == {"new"}


def test_saving_the_same_run_again_inserts_nothing(engine, run):
    first = save_run(engine, run=run)
    again = save_run(engine, run=make_run())
    assert not again.created and again.run_id == first.run_id
    assert counts(engine) == (1, 10)


@pytest.mark.parametrize("change", [
    {"file_sha256": "e" * 64},
    {"parameters": {"contamination": 0.05}},
    {"profile": "generic"},
])
def test_a_different_file_or_settings_is_a_new_run(engine, change):
    save_run(engine, run=make_run())
    assert save_run(engine, run=make_run(**change)).created
    assert counts(engine) == (2, 20)


def test_a_failing_save_leaves_nothing_behind(engine):
    bad = make_run()
    bad.anomalies.loc[5, "severity"] = "severe"  # violates the check constraint
    with pytest.raises(RefusedValueError, match="refused a value of run"):
        save_run(engine, run=bad)
    assert counts(engine) == (0, 0)
    assert save_run(engine, run=make_run()).created  # and the run can be saved later


def test_list_runs_newest_first(engine):
    for i in range(3):
        save_run(engine, run=make_run(file_sha256=str(i) * 64, source_name=f"f{i}.csv"))
    assert [r.source_name for r in list_runs(engine)] == ["f2.csv", "f1.csv", "f0.csv"]
    assert [r.source_name for r in list_runs(engine, limit=1, offset=1)] == ["f1.csv"]


def _save_in_process(url: str, barrier, results) -> None:
    engine = db.make_engine(url)
    barrier.wait()
    outcome = save_run(engine, run=make_run(2000))
    results.put((outcome.run_id, outcome.created))


@pytest.mark.slow
def test_two_processes_saving_the_same_run_store_it_once(database_url):
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_save_in_process, args=(database_url, barrier, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert len({run_id for run_id, _ in outcomes}) == 1
    assert sorted(created for _, created in outcomes) == [False, True]
    assert counts(db.make_engine(database_url)) == (1, 2000)
