"""Saving through the use case: once, and never lost when the database fails."""

import csv
import io

import pytest
from sqlalchemy import func, select, text

from app import scoring, services
from app.settings import Settings
from app.vigil import Actor, Vigil
from detection import read_csv
from sample_data import sample_path
from storage import db, journal, runs
from storage.schema import Anomaly, DetectionRun
from tests.conftest import to_csv_bytes

LOGINS = sample_path("logins.csv")


@pytest.fixture(scope="module")
def scored():
    dataset = services.read_dataset(LOGINS)
    return scoring.analyze(dataset), services.file_sha256(LOGINS)


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
    first = services.save(Vigil(settings), result, source_name="logins.csv", file_sha256=sha)
    second = services.save(Vigil(settings), result, source_name="logins.csv", file_sha256=sha)
    assert first.created and first.message == f"Stored as run {first.run_id}."
    assert not second.created and second.run_id == first.run_id
    assert "Already stored" in second.message
    assert stored_counts(database_url) == (1, len(result.anomalies))
    run = services.get_run(Vigil(settings), first.run_id)
    assert run.entity_column == "user" and run.time_column == "timestamp"
    assert sum(count for _, count in run.score_histogram) == len(result.frame)


def saved_by(settings: Settings) -> list[tuple[str, str]]:
    events = services.audit_log(Vigil(settings), action="run.save")
    return list(zip(events["actor"], events["target"], strict=True))


def test_the_audit_log_says_who_stored_a_run_once(database_url, tmp_path, scored):
    result, sha = scored
    settings = settings_for(database_url, tmp_path)
    ana = Vigil(settings).acting_as(Actor("ana", "analyst"))
    first = services.save(ana, result, source_name="logins.csv", file_sha256=sha)
    again = services.save(ana, result, source_name="logins.csv", file_sha256=sha)
    assert first.created and not again.created
    assert saved_by(settings) == [("ana", f"run {first.run_id}")]  # stored once: one event
    (after,) = services.audit_log(Vigil(settings), action="run.save")["after"]
    assert after == {"source": "logins.csv", "profile": "login", "rows": len(result.frame),
                     "flagged": len(result.anomalies), "model": "fitted on the file"}


def test_database_refusing_connections_journals_the_run(tmp_path, scored, database_url):
    result, sha = scored
    down = settings_for("postgresql://postgres@127.0.0.1:1/vigil", tmp_path)
    report = services.save(Vigil(down), result, source_name="logins.csv", file_sha256=sha)
    assert not report.stored
    assert "could not store the run" in report.message and "Connection refused" in \
        report.message and "vigil db replay" in report.message
    assert journal.entries(down.journal_dir) == [report.journal_entry]
    # the database is back: replay stores every row once and empties the journal
    up = settings_for(database_url, tmp_path)
    replayed = services.replay(Vigil(up).acting_as(Actor("ada", "admin")))
    assert [r.created for r in replayed] == [True]
    assert stored_counts(database_url) == (1, len(result.anomalies))
    assert saved_by(up) == [("ada", f"run {replayed[0].run_id}")]  # who replayed it
    assert journal.entries(up.journal_dir) == []
    assert services.replay(Vigil(up)) == []


def test_replay_of_a_run_already_stored_adds_nothing(database_url, tmp_path, scored):
    result, sha = scored
    settings = settings_for(database_url, tmp_path)
    services.save(Vigil(settings), result, source_name="logins.csv", file_sha256=sha)
    run = runs.RunToSave.from_result(result, source_name="logins.csv", file_sha256=sha)
    journal.write(settings.journal_dir, run)
    assert [r.created for r in services.replay(Vigil(settings))] == [False]
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
    report = services.save(Vigil(settings), result, source_name="logins.csv", file_sha256=sha)
    assert len(batches) == 3
    assert not report.stored and "could not store the run" in report.message
    assert stored_counts(postgres_url) == (0, 0)  # nothing half-saved
    replayed = services.replay(Vigil(settings))
    assert [r.created for r in replayed] == [True]
    assert stored_counts(postgres_url) == (1, len(result.anomalies))
    rows = services.query_anomalies(Vigil(settings), limit=None)
    assert rows["row_number"].is_unique
    engine.dispose()


def hostile_logins():
    """The logins sample with a NUL in one user name and a 300-character other one."""
    import pandas as pd

    frame = pd.read_csv(LOGINS)
    first, _ = scored_file(LOGINS)
    users = first.anomalies["user"].value_counts().index  # renaming keeps them flagged
    frame.loc[frame["user"] == users[0], "user"] = "nul\x00user"
    frame.loc[frame["user"] == users[1], "user"] = "x" * 300
    frame = frame.rename(columns={"device": "dev\x00ice"})
    return scored_file(frame.to_csv(index=False).encode())


def scored_file(source):
    return scoring.analyze(services.read_dataset(source)), services.file_sha256(source)


def test_nul_characters_and_long_names_are_stored_cleaned(database_url, tmp_path):
    result, sha = hostile_logins()
    flagged = result.anomalies
    assert flagged["user"].str.contains("\x00").any() and (flagged["user"].str.len() > 255).any()
    settings = settings_for(database_url, tmp_path)
    report = services.save(Vigil(settings), result, source_name="in\x00put" + "y" * 300 + ".csv",
                           file_sha256=sha)
    assert report.stored, report.message
    run = services.get_run(Vigil(settings), report.run_id)
    assert len(run.source_name) == 255 and run.source_name.startswith("inputyyy")
    assert run.source_name.endswith("…")
    stored = services.query_anomalies(Vigil(settings), limit=None, with_data=True)
    assert len(stored) == len(flagged)
    assert "nuluser" in set(stored["entity"])
    assert ("x" * 254 + "…") in set(stored["entity"])
    assert not stored["reasons"].str.contains("\x00").any()
    assert all("device" in row and "dev\x00ice" not in row for row in stored["data"])


def journal_run(result, sha: str, name: str):
    return runs.RunToSave.from_result(result, source_name=name, file_sha256=sha)


@pytest.mark.postgres
def test_replay_sets_aside_a_refused_entry_and_stores_the_rest(postgres_url, tmp_path, scored):
    import os

    result, _ = scored
    settings = settings_for(postgres_url, tmp_path)
    engine = db.make_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE detection_runs RESTART IDENTITY CASCADE"))
    engine.dispose()
    first = journal_run(result, "a" * 64, "first.csv")
    bad = journal_run(result, "b" * 64, "bad.csv")
    bad.anomalies.loc[bad.anomalies.index[0], "entity"] = "z" * 300  # journaled before cleaning
    last = journal_run(result, "c" * 64, "last.csv")
    for age, run in enumerate((first, bad, last)):
        entry = journal.write(settings.journal_dir, run)
        os.utime(entry, (1_000_000 + age, 1_000_000 + age))

    reports = services.replay(Vigil(settings))
    assert [r.stored for r in reports] == [True, False, True]
    assert "refused a value of run 'bad.csv'" in reports[1].message
    assert "value too long" in reports[1].message
    assert "database failed" not in reports[1].message
    assert journal.entries(settings.journal_dir) == []
    rejected = settings.journal_dir / journal.REJECTED / bad.run_key
    assert "value too long" in (rejected / journal.REASON).read_text()
    names = {run.source_name for run in services.list_runs(Vigil(settings))}
    assert names == {"first.csv", "last.csv"}
    assert services.replay(Vigil(settings)) == []  # the rejected entry stays aside


def test_replay_sets_aside_an_unreadable_entry(database_url, tmp_path, scored):
    result, _ = scored
    settings = settings_for(database_url, tmp_path)
    broken = journal.write(settings.journal_dir, journal_run(result, "d" * 64, "broken.csv"))
    (broken / journal.ROWS).unlink()
    good = journal.write(settings.journal_dir, journal_run(result, "e" * 64, "good.csv"))
    reports = services.replay(Vigil(settings))
    assert sorted(r.stored for r in reports) == [False, True]
    assert not broken.exists() and not good.exists()
    assert "cannot be read" in next(r.message for r in reports if not r.stored)


def test_two_replays_at_once_store_each_entry_once(tmp_path, scored):
    from concurrent.futures import ThreadPoolExecutor

    result, _ = scored
    settings = settings_for(f"sqlite:///{tmp_path / 'vigil.db'}", tmp_path)
    for i in range(4):
        journal.write(settings.journal_dir, journal_run(result, f"{i}" * 64, f"f{i}.csv"))
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: services.replay(Vigil(settings)), range(2)))
    assert sorted(len(o) for o in outcomes) == [0, 4]
    assert all(r.created for o in outcomes for r in o)
    assert len(services.list_runs(Vigil(settings))) == 4


def test_unwritable_journal_says_the_run_was_not_stored(tmp_path, scored):
    result, sha = scored
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    down = Settings(database_url="postgresql://postgres@127.0.0.1:1/vigil",
                    journal_dir=blocker / "fallback", alert_outbox_dir=tmp_path / "outbox")
    report = services.save(Vigil(down), result, source_name="logins.csv", file_sha256=sha)
    assert not report.stored and report.journal_entry is None
    assert report.message.startswith("The run was NOT stored")
    assert "Connection refused" in report.message and str(blocker / "fallback") in report.message


def test_downloads_keep_the_files_column_order_on_every_database(database_url, tmp_path):
    """PostgreSQL's JSONB stores an object's keys shortest first; the CSV download (and
    the alert attachment, which shares it) must list the file's columns in file order."""
    columns = ["zeta_reading", "a", "timestamp", "mid", "value"]
    rows = [f"{i % 7},x{i},2025-01-01 {i // 60:02d}:{i % 60:02d}:00,{i % 3},"
            f"{500 if i == 40 else i % 5}" for i in range(120)]
    content = (",".join(columns) + "\n" + "\n".join(rows) + "\n").encode()
    vigil = Vigil(settings_for(database_url, tmp_path))
    result = scoring.analyze(services.read_dataset(content))
    report = services.save(vigil, result, source_name="order.csv",
                           file_sha256=services.file_sha256(content))
    data = services.anomalies_csv(vigil, services.AnomalyFilter(run_ids=[report.run_id]))
    header = next(csv.reader(io.StringIO(data.decode())))
    assert [c for c in header if c in columns] == columns


def test_a_file_without_times_is_stored_with_incidents_without_times(database_url, tmp_path):
    """A generic file (no timestamp column): its incidents have no start or end, which
    used to stop the save with a traceback."""
    frame = read_csv(sample_path("elevators.csv"))[["revolutions", "humidity", "vibration"]]
    vigil = Vigil(settings_for(database_url, tmp_path))
    result = services.analyze(vigil, services.read_dataset(to_csv_bytes(frame)))
    assert result.profile == "generic" and result.frame["is_anomaly"].sum() > 0
    report = services.save(vigil, result, source_name="untimed.csv", file_sha256="c" * 64)
    assert report.stored, report.message
    assert stored_counts(database_url) == (1, int(result.frame["is_anomaly"].sum()))
    found = services.query_incidents(vigil, services.IncidentFilter(run_ids=[report.run_id]),
                                     limit=None)
    assert len(found) and found["started_at"].isna().all()


def test_the_logins_samples_spray_is_one_campaign_in_storage_and_the_digest(tmp_path, scored):
    """The digest listed 20 per-user incidents, all "device curl/8.4.0 … 09:10–09:37"."""
    result, sha = scored
    settings = settings_for(f"sqlite:///{tmp_path / 'v.db'}", tmp_path)
    vigil = Vigil(settings, actor=Actor("ada", "admin"))
    db.upgrade(vigil.engine)
    run_id = services.save(vigil, result, source_name="logins.csv", file_sha256=sha).run_id
    found = services.query_incidents(vigil, services.IncidentFilter(run_ids=[run_id]))
    spray = found[found["entity"] == "123.112.116.36"]
    assert len(spray) == 1
    assert spray["summary"].iloc[0].startswith("campaign from 123.112.116.36: 30 users (")
    assert spray["row_count"].iloc[0] == 31
    _, html = services.preview_digest(vigil, run_id)
    assert html.count("campaign from 123.112.116.36: 30 users") == 1
    assert html.count("curl/8.4.0") <= 2  # one incident, not one a user
