"""Saving through the use case: once, and never lost when the database fails."""

import pytest
from sqlalchemy import func, select, text

from app import services
from app.settings import Settings
from sample_data import sample_path
from storage import db, journal, runs
from storage.schema import Anomaly, DetectionRun

LOGINS = sample_path("logins.csv")


@pytest.fixture(scope="module")
def scored():
    dataset = services.read_dataset(LOGINS)
    return services.analyze(dataset), services.file_sha256(LOGINS)


def settings_for(url: str, tmp_path) -> Settings:
    return Settings(database_url=url, journal_dir=tmp_path / "fallback",
                    alert_outbox_dir=tmp_path / "outbox")


def stored_counts(url: str) -> tuple[int, int]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        found = (conn.scalar(select(func.count()).select_from(DetectionRun)),
                 conn.scalar(select(func.count()).select_from(Anomaly)))
    engine.dispose()
    return found


def test_save_twice_stores_once(database_url, tmp_path, scored):
    result, sha = scored
    settings = settings_for(database_url, tmp_path)
    first = services.save(result, source_name="logins.csv", file_sha256=sha, settings=settings)
    second = services.save(result, source_name="logins.csv", file_sha256=sha,
                           settings=settings)
    assert first.created and first.message == f"Stored as run {first.run_id}."
    assert not second.created and second.run_id == first.run_id
    assert "Already stored" in second.message
    assert stored_counts(database_url) == (1, len(result.anomalies))
    run = services.get_run(first.run_id, settings=settings)
    assert run.entity_column == "user" and run.time_column == "timestamp"
    assert sum(count for _, count in run.score_histogram) == len(result.frame)


def test_database_refusing_connections_journals_the_run(tmp_path, scored, database_url):
    result, sha = scored
    down = settings_for("postgresql://postgres@127.0.0.1:1/vigil", tmp_path)
    report = services.save(result, source_name="logins.csv", file_sha256=sha, settings=down)
    assert not report.stored
    assert "could not store the run" in report.message and "Connection refused" in \
        report.message and "vigil db replay" in report.message
    assert journal.entries(down.journal_dir) == [report.journal_entry]
    # the database is back: replay stores every row once and empties the journal
    up = settings_for(database_url, tmp_path)
    replayed = services.replay(settings=up)
    assert [r.created for r in replayed] == [True]
    assert stored_counts(database_url) == (1, len(result.anomalies))
    assert journal.entries(up.journal_dir) == []
    assert services.replay(settings=up) == []


def test_replay_of_a_run_already_stored_adds_nothing(database_url, tmp_path, scored):
    result, sha = scored
    settings = settings_for(database_url, tmp_path)
    services.save(result, source_name="logins.csv", file_sha256=sha, settings=settings)
    run = runs.RunToSave.from_result(result, source_name="logins.csv", file_sha256=sha)
    journal.write(settings.journal_dir, run)
    assert [r.created for r in services.replay(settings=settings)] == [False]
    assert stored_counts(database_url) == (1, len(result.anomalies))


def test_journal_round_trip_keeps_every_value(tmp_path, scored):
    result, sha = scored
    run = runs.RunToSave.from_result(result, source_name="logins.csv", file_sha256=sha,
                                     chart_data=b"bins", score_histogram=[[1.0, 2]])
    back = journal.read(journal.write(tmp_path, run))
    assert back.run_key == run.run_key and back.chart_data == b"bins"
    for column in ("row_number", "anomaly_score", "severity", "reasons", "entity", "data"):
        assert back.anomalies[column].tolist() == run.anomalies[column].tolist(), column
    assert [t.isoformat() for t in back.anomalies["event_time"]] == \
        [t.isoformat() for t in run.anomalies["event_time"]]


@pytest.mark.postgres
def test_backend_terminated_mid_save(postgres_url, tmp_path, scored, monkeypatch):
    """The connection dies between two batches of anomalies: nothing partial is stored,
    the journal holds the run, and replay restores every row exactly once."""
    result, sha = scored
    settings = settings_for(postgres_url, tmp_path)
    engine = db.make_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE detection_runs RESTART IDENTITY CASCADE"))
    monkeypatch.setattr(runs, "INSERT_BATCH", 40)  # several batches: die in the middle
    batches = []
    copy_rows = runs._copy_rows

    def kill_on_third_batch(session, run_id, anomalies):
        batches.append(len(anomalies))
        if len(batches) == 3:
            pid = session.connection().connection.dbapi_connection.get_backend_pid()
            with engine.connect() as killer:
                killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        copy_rows(session, run_id, anomalies)

    monkeypatch.setattr(runs, "_copy_rows", kill_on_third_batch)
    report = services.save(result, source_name="logins.csv", file_sha256=sha,
                           settings=settings)
    assert len(batches) == 3
    assert not report.stored and "could not store the run" in report.message
    assert stored_counts(postgres_url) == (0, 0)  # nothing half-saved
    replayed = services.replay(settings=settings)
    assert [r.created for r in replayed] == [True]
    assert stored_counts(postgres_url) == (1, len(result.anomalies))
    rows = services.query_anomalies(limit=None, settings=settings)
    assert rows["row_number"].is_unique
    engine.dispose()
