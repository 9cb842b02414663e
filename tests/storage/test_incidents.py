"""Incidents stored with their runs, linked to their rows, reviewed as one."""

from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import func, select

from storage import journal
from storage.anomalies import AnomalyFilter, query_anomalies
from storage.incidents import IncidentFilter, query_incidents, set_review_status
from storage.runs import save_run
from storage.schema import Incident
from tests.storage.conftest import make_run


def burst_run(**kwargs):
    """Ten rows: elevator-0 every 10 minutes (one incident of 6), then elevator-1 twice
    two hours apart (two incidents), then two lone rows of elevator-2."""
    run = make_run(10, **kwargs)
    start = datetime(2025, 6, 1, tzinfo=UTC)
    minutes = [0, 10, 20, 30, 40, 50, 0, 120, 0, 300]
    run.anomalies["event_time"] = [start + timedelta(minutes=m) for m in minutes]
    run.anomalies["entity"] = ["elevator-0"] * 6 + ["elevator-1"] * 2 + ["elevator-2"] * 2
    return run


def test_a_saved_run_stores_its_incidents_and_links_every_row(engine):
    run_id = save_run(engine, run=burst_run()).run_id
    found = query_incidents(engine, filters=IncidentFilter(run_ids=[run_id]))
    assert sorted(found["row_count"].tolist()) == [1, 1, 1, 1, 6]
    burst = found[found["row_count"] == 6].iloc[0]
    assert burst["entity"] == "elevator-0"
    assert burst["started_at"] == pd.Timestamp("2025-06-01 00:00", tz="UTC")
    assert burst["ended_at"] == pd.Timestamp("2025-06-01 00:50", tz="UTC")
    rows = query_anomalies(engine, filters=AnomalyFilter(run_ids=[run_id]), limit=None)
    assert rows["incident_id"].notna().all()
    assert (rows.groupby("incident_id").size().sort_values().tolist() == [1, 1, 1, 1, 6])
    assert burst["peak_score"] == rows.loc[rows["incident_id"] == burst["id"],
                                           "anomaly_score"].max()


def test_saving_the_same_run_again_adds_no_incident(engine):
    save_run(engine, run=burst_run())
    assert not save_run(engine, run=burst_run()).created
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Incident)) == 5


def test_the_gap_is_the_runs_own(engine):
    run_id = save_run(engine, run=burst_run(file_sha256="c" * 64)).run_id
    wide = burst_run(file_sha256="d" * 64)
    wide.incident_gap_minutes = 180  # elevator-1's two rows, two hours apart, now join
    wide_id = save_run(engine, run=wide).run_id
    counts = query_incidents(engine).groupby("run_id").size()
    assert (counts[run_id], counts[wide_id]) == (5, 4)


def test_reviewing_an_incident_reviews_its_rows(engine):
    run_id = save_run(engine, run=burst_run()).run_id
    burst = query_incidents(engine, filters=IncidentFilter(run_ids=[run_id])) \
        .sort_values("row_count").iloc[-1]
    assert set_review_status(engine, incident_ids=[burst["id"]], status="false_positive",
                             reviewed_by="ana", note="maintenance visit") == 1
    rows = query_anomalies(engine, filters=AnomalyFilter(run_ids=[run_id]), limit=None)
    mine = rows[rows["incident_id"] == burst["id"]]
    assert (mine["review_status"] == "false_positive").all() and len(mine) == 6
    assert (mine["reviewed_by"] == "ana").all() and (mine["note"] == "maintenance visit").all()
    assert (rows.loc[rows["incident_id"] != burst["id"], "review_status"] == "new").all()
    reviewed = query_incidents(engine, filters=IncidentFilter(review_statuses=["false_positive"]))
    assert reviewed["id"].tolist() == [burst["id"]]


def test_the_gap_survives_the_journal(tmp_path):
    run = burst_run()
    run.incident_gap_minutes = 180
    assert journal.read(journal.write(tmp_path, run)).incident_gap == pd.Timedelta(hours=3)
