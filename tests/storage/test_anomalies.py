"""Filtering, paging and reviewing stored anomalies; the overview's counts."""

from datetime import UTC, datetime, timedelta

import pytest

from storage.anomalies import (
    AnomalyFilter,
    count_anomalies,
    entity_counts,
    open_anomaly_ids,
    overview,
    query_anomalies,
    set_review_status,
)
from storage.errors import StorageError
from storage.runs import save_run
from tests.storage.conftest import make_run

START = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture
def stored(engine):
    """Two runs: 12 anomalies in the first, 6 in the second."""
    first = save_run(engine, run=make_run(12)).run_id
    second = save_run(engine, run=make_run(6, file_sha256="b" * 64)).run_id
    return engine, first, second


@pytest.mark.parametrize(("filters", "expected"), [
    (AnomalyFilter(), 18),
    (AnomalyFilter(since=START + timedelta(hours=10)), 2),
    (AnomalyFilter(until=START + timedelta(hours=2)), 6),
    (AnomalyFilter(severities=["critical"]), 2),
    (AnomalyFilter(entities=["elevator-1"]), 6),
    (AnomalyFilter(min_score=90), 3),
    (AnomalyFilter(max_score=60), 4),
    (AnomalyFilter(reason_text="VIBRATION usual"), 9),
    (AnomalyFilter(reason_text="100%_"), 0),  # LIKE wildcards are literal text
    (AnomalyFilter(reason_text="vibra\x00tion"), 9),  # PostgreSQL refuses NUL in queries
    (AnomalyFilter(entities=["elevator-1\x00"]), 6),
    (AnomalyFilter(review_statuses=["new"]), 18),
    (AnomalyFilter(review_statuses=["confirmed"]), 0),
])
def test_filters(stored, filters, expected):
    engine, _, _ = stored
    assert count_anomalies(engine, filters=filters) == expected
    assert len(query_anomalies(engine, filters=filters, limit=None)) == expected


def test_filter_by_run_and_page_worst_first(stored):
    engine, first, _ = stored
    page1 = query_anomalies(engine, filters=AnomalyFilter(run_ids=[first]), limit=5)
    page2 = query_anomalies(engine, filters=AnomalyFilter(run_ids=[first]), limit=5, offset=5)
    assert len(page1) == 5 and len(page2) == 5
    scores = page1["anomaly_score"].tolist() + page2["anomaly_score"].tolist()
    assert scores == sorted(scores, reverse=True)
    assert not set(page1["id"]) & set(page2["id"])


def test_review_one_and_many(stored):
    engine, first, _ = stored
    ids = query_anomalies(engine, filters=AnomalyFilter(run_ids=[first]), limit=3)["id"]
    assert set_review_status(engine, anomaly_ids=[ids[0]], status="confirmed",
                             reviewed_by="ana", note="bearing worn") == 1
    assert set_review_status(engine, anomaly_ids=ids[1:], status="false_positive",
                             reviewed_by="ana") == 2
    rows = query_anomalies(engine, filters=AnomalyFilter(ids=list(ids))).set_index("id")
    assert rows.loc[ids[0], "review_status"] == "confirmed"
    assert rows.loc[ids[0], "note"] == "bearing worn"
    assert rows.loc[ids[1], "review_status"] == "false_positive"
    assert rows["reviewed_by"].eq("ana").all() and rows["reviewed_at"].notna().all()
    # closed rows are not alerted again
    critical_and_high = open_anomaly_ids(engine, run_id=first,
                                         severities=["high", "critical"])
    assert ids[1] not in critical_and_high and ids[0] in critical_and_high


def test_reviewer_names_over_255_characters_are_refused_in_words(stored):
    engine, first, _ = stored
    with pytest.raises(StorageError, match="'reviewed by' is at most 255 characters; got 300"):
        set_review_status(engine, anomaly_ids=[1], status="confirmed", reviewed_by="a" * 300)
    assert set_review_status(engine, anomaly_ids=[1], status="confirmed",
                             reviewed_by="an\x00a", note="n\x00ote") == 1
    row = query_anomalies(engine, filters=AnomalyFilter(ids=[1])).iloc[0]
    assert (row["reviewed_by"], row["note"]) == ("ana", "note")


def test_unknown_review_status_is_refused(stored):
    engine, _, _ = stored
    with pytest.raises(StorageError, match="review status must be one of new, acknowledged"):
        set_review_status(engine, anomaly_ids=[1], status="fixed")


def test_overview_counts(stored):
    engine, _, _ = stored
    set_review_status(engine, anomaly_ids=[1, 2], status="acknowledged")
    stats = overview(engine, since=datetime.now(UTC) - timedelta(days=7))
    assert stats["per_day"]["anomalies"].sum() == 18
    assert set(stats["per_day"]["profile"]) == {"sensor"}
    # Counted by the day they happened, not the day their run was stored (today).
    assert set(stats["per_day"]["day"].dt.date) == {START.date()}
    by_state = stats["review"].groupby("state")["anomalies"].sum()
    assert by_state.to_dict() == {"open": 16, "reviewed": 2}
    assert stats["runs"].set_index("profile").loc["sensor", "runs"] == 2
    future = overview(engine, since=datetime.now(UTC) + timedelta(days=1))
    assert future["per_day"].empty


def test_entity_counts(stored):
    engine, _, _ = stored
    top = entity_counts(engine)
    assert top["anomalies"].sum() == 18 and top["anomalies"].is_monotonic_decreasing


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_overview_days_are_utc_days_whatever_the_sessions_zone(database_url, monkeypatch):
    """A client in UTC+14 (PGTZ) counted 2025-06-01's morning as 2 June."""
    from storage import db

    monkeypatch.setenv("PGTZ", "Pacific/Kiritimati")
    engine = db.make_engine(database_url)
    save_run(engine, run=make_run(12))  # 00:00 to 11:00 UTC on 1 June
    stats = overview(engine, since=datetime.now(UTC) - timedelta(days=7))
    assert set(stats["per_day"]["day"].dt.date) == {START.date()}
    engine.dispose()
