"""`vigil stream`: rows scored as they arrive get the scores of the whole file."""

import io
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from sample_data import sample_path
from tests.app.cli import environment, started, vigil

ELEVATORS = sample_path("elevators.csv")

pytestmark = pytest.mark.slow  # runs `vigil stream` in processes


def trained(tmp_path) -> str:
    run = vigil("train", ELEVATORS, "--profile", "sensor", tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1].split()[-1]


def test_standard_input_streamed_scores_as_the_whole_file(tmp_path):
    version = trained(tmp_path)
    whole = vigil("score", ELEVATORS, "--model", version, "--learn", tmp_path=tmp_path)
    streamed = vigil("stream", "-", "--model", version, tmp_path=tmp_path,
                     stdin=ELEVATORS.read_text())
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout == whole.stdout
    assert streamed.stderr.strip().startswith("8064 rows scored as they arrived")


def test_a_model_is_streamed_by_its_name_as_by_its_version(tmp_path):
    """`--model NAME` (its newest version), as `vigil score` and `vigil watch` take it."""
    named = vigil("train", ELEVATORS, "--name", "lifts", tmp_path=tmp_path)
    version = named.stdout.strip().splitlines()[-1].split()[2]
    by_version = vigil("stream", ELEVATORS, "--model", version, tmp_path=tmp_path)
    by_name = vigil("stream", ELEVATORS, "--model", "lifts", tmp_path=tmp_path)
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout == by_version.stdout
    assert by_version.stdout.count("\n") == 8065


def test_a_folder_scored_learning_is_scored_as_its_files_in_one_stream(tmp_path):
    """A dataset of two files is read whole, not in pieces: --learn still learns."""
    version = trained(tmp_path)
    lines = ELEVATORS.read_text().splitlines(keepends=True)
    folder = tmp_path / "lifts"
    folder.mkdir()
    (folder / "a.csv").write_text("".join(lines[:4001]))
    (folder / "b.csv").write_text(lines[0] + "".join(lines[4001:]))
    parts = vigil("score", folder, "--model", version, "--learn", tmp_path=tmp_path)
    whole = vigil("score", ELEVATORS, "--model", version, "--learn", tmp_path=tmp_path)
    assert parts.returncode == 0, parts.stderr
    assert parts.stdout == whole.stdout  # ignoring --learn, it gave the fixed scores


def test_a_followed_file_is_scored_as_lines_arrive_and_across_rotation(tmp_path):
    version = trained(tmp_path)
    lines = ELEVATORS.read_text().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    log, out = tmp_path / "live.csv", tmp_path / "scored.csv"
    log.write_text(header + "".join(rows[:1000]))
    process = started("stream", log, "--follow", "--model", version, "--out", out,
                      tmp_path=tmp_path, stderr=subprocess.PIPE, text=True)

    def scored_rows(expected: int) -> pd.DataFrame:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and out.stat().st_size:
                frame = pd.read_csv(out)
                if len(frame) >= expected:
                    return frame
            time.sleep(0.1)
        raise AssertionError(f"{expected} rows were not scored in time: {process.stderr}")

    try:
        scored_rows(1000)
        with log.open("a") as handle:  # appended in two bursts, the second half a line
            handle.write("".join(rows[1000:3000]) + rows[3000][:10])
            handle.flush()
            time.sleep(0.5)
            handle.write(rows[3000][10:])
        scored_rows(3001)
        log.rename(tmp_path / "live.csv.1")  # rotation: a new file under the same name
        (tmp_path / "live.new").write_text(header + "".join(rows[3001:]))
        (tmp_path / "live.new").rename(log)
        got = scored_rows(len(rows))
    finally:
        # What `docker stop` or systemd sends: stopped as Ctrl-C stops it, not killed where
        # it stands (Ctrl-C itself is ignored in a background job of a script).
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.stderr.read()
    whole = vigil("score", ELEVATORS, "--model", version, "--learn", tmp_path=tmp_path)
    expected = pd.read_csv(io.StringIO(whole.stdout))
    pd.testing.assert_frame_equal(got, expected)


def test_a_stream_whose_first_batch_is_one_row(tmp_path):
    version = trained(tmp_path)
    lines = ELEVATORS.read_text().splitlines(keepends=True)
    process = started("stream", "-", "--model", version, tmp_path=tmp_path,
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      text=True)
    process.stdin.write(lines[0] + lines[1])
    process.stdin.flush()
    time.sleep(1.0)  # a batch of its own
    out, err = process.communicate("".join(lines[2:]), timeout=120)
    assert process.returncode == 0, err
    whole = vigil("score", ELEVATORS, "--model", version, "--learn", tmp_path=tmp_path)
    assert out == whole.stdout


def stored(url: str, run_id: int | None = None):
    """The stored anomalies and incidents of a database's one run."""
    from app import services
    from app.settings import Settings
    from app.vigil import Vigil

    settings = Settings(database_url=url)
    (run,) = services.list_runs(Vigil(settings))
    rows = services.query_anomalies(Vigil(settings), services.AnomalyFilter(run_ids=[run.id]), limit=None)
    found = services.query_incidents(Vigil(settings), services.IncidentFilter(run_ids=[run.id]), limit=None)
    rows = rows.sort_values("row_number").reset_index(drop=True)
    columns = ["entity", "started_at", "ended_at", "row_count", "peak_score", "severity",
               "summary"]
    found = found.sort_values(["entity", "started_at"])[columns].reset_index(drop=True)
    return run, rows[["row_number", "entity", "anomaly_score", "severity", "reasons"]], found


def saved_whole(tmp_path, version) -> tuple:
    """What one uninterrupted `vigil stream FILE --save` stores for the whole file (the
    rows of `vigil score --model --learn`), for comparison."""
    whole_db = tmp_path / "whole"
    whole_db.mkdir()
    import shutil

    shutil.copy(tmp_path / "vigil.db", whole_db / "vigil.db")  # the same registered model
    run = vigil("stream", ELEVATORS, "--model", version, "--save", "--out", tmp_path / "o.csv",
                tmp_path=whole_db)
    assert run.returncode == 0, run.stderr
    return stored(f"sqlite:///{whole_db / 'vigil.db'}")


def test_a_saved_stream_stopped_and_restarted_stores_what_saving_the_file_stores(tmp_path):
    version = trained(tmp_path)
    _, expected_rows, expected_incidents = saved_whole(tmp_path, version)
    lines = ELEVATORS.read_text().splitlines(keepends=True)
    first = vigil("stream", "-", "--model", version, "--save", "--source", "lift-feed",
                  "--out", tmp_path / "a.csv", tmp_path=tmp_path, stdin="".join(lines[:5001]))
    assert first.returncode == 0, first.stderr
    again = vigil("stream", "-", "--model", version, "--save", "--source", "lift-feed",
                  "--out", tmp_path / "b.csv", tmp_path=tmp_path, stdin="".join(lines))
    assert again.returncode == 0, again.stderr
    assert "5000 rows were stored before; continuing after them" in again.stderr
    run, rows, found = stored(f"sqlite:///{tmp_path / 'vigil.db'}")
    assert (run.source_name, run.status, run.total_rows) == ("lift-feed", "live", 8064)
    pd.testing.assert_frame_equal(rows, expected_rows)
    pd.testing.assert_frame_equal(found, expected_incidents)


@pytest.mark.postgres
def test_kill_9_mid_stream_then_restart_stores_every_row_once(tmp_path, postgres_url):
    from sqlalchemy import text

    from storage import db

    engine = db.make_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE detection_runs, model_versions RESTART IDENTITY CASCADE"))
    engine.dispose()
    version = trained(tmp_path)  # SQLite: for the whole-file comparison
    _, expected_rows, expected_incidents = saved_whole(tmp_path, version)
    env = {**os.environ, "DATABASE_URL": postgres_url, "ALERT_TO_MAINTENANCE": "ops@x.org",
           "ALERT_MAX_PER_HOUR": "1000", "ALERT_OUTBOX_DIR": str(tmp_path / "outbox")}
    app = [sys.executable, "-m", "app"]
    model = subprocess.run([*app, "train", str(ELEVATORS), "--profile", "sensor"], env=env,
                           capture_output=True, text=True, check=True)
    version = model.stdout.strip().splitlines()[-1].split()[-1]
    live = subprocess.Popen([*app, "stream", "-", "--model", version, "--save", "--alert",
                             "--source", "lifts", "--out", str(tmp_path / "live.csv")], env=env,
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    from app import services
    from app.settings import Settings
    from app.vigil import Vigil

    # The first 3,000 rows, 500 at a time; the pipe stays open, so the stream is still
    # going (a replay at full speed could be read through in one batch by a slow start).
    header, *rows = ELEVATORS.read_bytes().splitlines(keepends=True)
    live.stdin.write(header)
    for start in range(0, 3000, 500):
        live.stdin.write(b"".join(rows[start:start + 500]))
        live.stdin.flush()
        time.sleep(0.1)
    settings = Settings(database_url=postgres_url)
    deadline = time.monotonic() + 60
    while services.stream_checkpoint(Vigil(settings), "lifts")[0] < 2000:
        assert time.monotonic() < deadline and live.poll() is None, live.stderr.read()
        time.sleep(0.05)
    live.kill()  # kill -9, mid-stream
    live.wait()
    position = services.stream_checkpoint(Vigil(settings), "lifts")[0]
    assert 2000 <= position <= 3000

    restart = subprocess.run([*app, "stream", str(ELEVATORS), "--model", version, "--save",
                              "--alert", "--source", "lifts", "--out", str(tmp_path / "rest.csv")],
                             env=env, capture_output=True, text=True, timeout=300)
    assert restart.returncode == 0, restart.stderr
    assert f"{position} rows were stored before" in restart.stderr
    run, rows, found = stored(postgres_url)
    assert run.total_rows == 8064
    assert services.stream_checkpoint(Vigil(settings), "lifts")[0] == 8064
    assert rows["row_number"].is_unique
    pd.testing.assert_frame_equal(rows, expected_rows)
    pd.testing.assert_frame_equal(found, expected_incidents)
    # Alerts: every incident at high or above was alerted, none twice, kill or not.
    log = services.notification_log(Vigil(settings))
    emails = list((tmp_path / "outbox").glob("*.eml"))
    alerted = found[found["severity"].isin(["high", "critical"])]
    # A notification claimed when the kill came joins the next email's digest.
    assert (log["status"] == "sent").all() and len(log) >= len(alerted) > 0
    assert 0 < len(emails) <= len(log)


def test_stream_alerts_each_incident_once_across_a_restart(tmp_path):
    from app import services
    from app.settings import Settings
    from app.vigil import Vigil

    version = trained(tmp_path)
    env = {"ALERT_TO_MAINTENANCE": "ops@x.org", "ALERT_MAX_PER_HOUR": "1000"}
    lines = ELEVATORS.read_text().splitlines(keepends=True)
    args = ("stream", "-", "--model", version, "--save", "--alert", "--source", "lifts",
            "--out", tmp_path / "o.csv")
    first = vigil(*args, tmp_path=tmp_path, env=env, stdin="".join(lines[:4001]))
    assert first.returncode == 0, first.stderr
    for _ in range(2):  # the rest, then the whole input once more: nothing new to send
        again = vigil(*args, tmp_path=tmp_path, env=env, stdin="".join(lines))
        assert again.returncode == 0, again.stderr
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'vigil.db'}")
    found = services.query_incidents(Vigil(settings), limit=None)
    alerted = found[found["severity"].isin(["high", "critical"])]
    assert len(alerted) > 0
    log = services.notification_log(Vigil(settings))
    emails = list((tmp_path / "outbox").glob("*.eml"))
    assert (log["status"] == "sent").all() and len(emails) == len(log)
    # One email per incident at high or above, and one more for each that escalated.
    assert len(alerted) <= len(log) <= 2 * len(alerted)
    assert "Alert for run" in first.stderr


def test_a_login_stream_scores_as_the_whole_file(tmp_path):
    lines = sample_path("logins.csv").read_text().splitlines(keepends=True)
    cut = int(len(lines) * 0.6)
    (tmp_path / "baseline.csv").write_text("".join(lines[:cut]))
    (tmp_path / "later.csv").write_text(lines[0] + "".join(lines[cut:]))
    run = vigil("train", tmp_path / "baseline.csv", "--profile", "login", tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    version = run.stdout.strip().splitlines()[-1].split()[-1]
    whole = vigil("score", tmp_path / "later.csv", "--model", version, tmp_path=tmp_path)
    streamed = vigil("stream", "-", "--model", version, tmp_path=tmp_path,
                     stdin=(tmp_path / "later.csv").read_text())
    assert streamed.returncode == 0, streamed.stderr
    expected = pd.read_csv(io.StringIO(whole.stdout))
    got = pd.read_csv(io.StringIO(streamed.stdout))
    pd.testing.assert_frame_equal(got, expected)
    assert expected["is_anomaly"].sum() > 20


def test_standard_input_redirected_from_a_file(tmp_path):
    """`vigil stream - < file`: standard input is a regular file, not a pipe."""
    version = trained(tmp_path)
    whole = vigil("score", ELEVATORS, "--model", version, "--learn", tmp_path=tmp_path)
    with ELEVATORS.open("rb") as handle:
        run = started("stream", "-", "--model", version, tmp_path=tmp_path, stdin=handle,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert out == whole.stdout


def test_a_stream_without_a_header_line_is_refused_with_a_clear_message(tmp_path):
    """Each batch is read with the stream's first line: a first line of values would be
    scored again with every batch."""
    temperature = sample_path("temperature.csv")
    run = vigil("train", temperature, "--profile", "sensor", tmp_path=tmp_path)
    version = run.stdout.strip().splitlines()[-1].split()[-1]
    lines = temperature.read_text().splitlines(keepends=True)[1:200]
    streamed = vigil("stream", "-", "--model", version, tmp_path=tmp_path, stdin="".join(lines))
    assert streamed.returncode == 2
    assert streamed.stderr.strip() == ("error: the stream's first line holds values: a stream "
                                       "starts with a header line naming its columns")
    assert streamed.stdout == ""


def test_a_second_writer_on_a_stream_is_refused_and_no_row_is_lost(tmp_path):
    """Two `vigil stream - --save --source S` at once stored 1,000 of 2,000 rows and both
    said "1000 rows scored". The stream's lease refuses the second writer in words."""
    from app import services
    from app.settings import Settings
    from app.vigil import Vigil

    version = trained(tmp_path)
    first = started("stream", "-", "--model", version, "--save", "--source", "lifts", "--out",
                    tmp_path / "a.csv", tmp_path=tmp_path, stdin=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    header, *rows = ELEVATORS.read_bytes().splitlines(keepends=True)
    first.stdin.write(header + b"".join(rows[:1000]))
    first.stdin.flush()
    vigil_ = Vigil(Settings(database_url=environment(tmp_path)["DATABASE_URL"]))
    deadline = time.monotonic() + 120
    while services.stream_checkpoint(vigil_, "lifts")[0] < 1000:
        assert time.monotonic() < deadline and first.poll() is None, first.stderr.read()
        time.sleep(0.05)

    second = vigil("stream", "-", "--model", version, "--save", "--source", "lifts",
                   "--out", tmp_path / "b.csv", tmp_path=tmp_path,
                   stdin=(header + b"".join(rows[1000:2000])).decode())
    assert second.returncode == 2
    assert second.stderr.startswith("error: stream 'lifts' is being written by vigil "
                                    f"stream (pid {first.pid} on"), second.stderr
    assert "Traceback" not in second.stderr

    first.stdin.write(b"".join(rows[1000:2000]))
    first.stdin.close()
    assert first.wait(timeout=120) == 0, first.stderr.read()
    assert services.stream_checkpoint(vigil_, "lifts")[0] == 2000
    # Given back at the end: the next writer continues after every stored row.
    again = vigil("stream", "-", "--model", version, "--save", "--source", "lifts",
                  "--out", tmp_path / "c.csv", tmp_path=tmp_path,
                  stdin=(header + b"".join(rows[:3000])).decode())
    assert again.returncode == 0, again.stderr
    assert services.stream_checkpoint(vigil_, "lifts")[0] == 3000


def test_an_api_batch_into_a_stream_a_process_writes_is_refused(tmp_path):
    """After one API batch into a running CLI stream every later CLI batch was dropped
    without a word; now the batch is refused while the stream has its writer."""
    from app import services
    from app.settings import Settings
    from app.vigil import Vigil
    from storage.errors import StreamConflictError

    version = trained(tmp_path)
    vigil_ = Vigil(Settings(database_url=f"sqlite:///{tmp_path / 'vigil.db'}"))
    header, *rows = ELEVATORS.read_bytes().splitlines(keepends=True)
    batch = header + b"".join(rows[:200])
    with (services.stream_writer(vigil_, "lifts", "vigil stream"),
          pytest.raises(StreamConflictError, match="is being written by vigil stream")):
        services.ingest(vigil_, "lifts", batch, model_version=version)
    assert services.ingest(vigil_, "lifts", batch, model_version=version).position == 200


@pytest.mark.parametrize("name", ["x" * 256, "lifts\x00", "lifts\n2", " "])
def test_a_stream_name_that_would_be_stored_as_another_is_refused(tmp_path, name):
    from app import services
    from app.settings import Settings
    from app.vigil import Vigil
    from storage.errors import StorageError

    vigil_ = Vigil(Settings(database_url=f"sqlite:///{tmp_path / 'vigil.db'}"))
    with pytest.raises(StorageError, match="a stream's name is 1 to 255 printable"):
        services.stream_checkpoint(vigil_, name)


def test_a_log_rotated_while_the_stream_was_stopped_is_read_from_its_start(tmp_path):
    """The checkpoint was a row count: a rotated file's first 1,000 rows were passed over
    as "stored before". Now a file is known by its first row; a resend still adds
    nothing."""
    from app import services
    from app.settings import Settings
    from app.vigil import Vigil

    version = trained(tmp_path)
    header, *rows = ELEVATORS.read_text().splitlines(keepends=True)
    log = tmp_path / "lifts.log"
    args = ("stream", log, "--model", version, "--save", "--source", "lifts", "--out",
            tmp_path / "o.csv")
    log.write_text(header + "".join(rows[:1000]))
    assert vigil(*args, tmp_path=tmp_path).returncode == 0
    log.rename(tmp_path / "lifts.log.1")  # rotated while no stream ran
    log.write_text(header + "".join(rows[1000:1500]))
    restart = vigil(*args, tmp_path=tmp_path)
    assert restart.returncode == 0, restart.stderr
    assert "500 rows scored as they arrived" in restart.stderr
    again = vigil(*args, tmp_path=tmp_path)  # the same file once more: nothing new
    assert "0 rows scored as they arrived" in again.stderr
    vigil_ = Vigil(Settings(database_url=f"sqlite:///{tmp_path / 'vigil.db'}"))
    assert services.stream_checkpoint(vigil_, "lifts")[0] == 1500
    log.write_text(header + "".join(rows[1000:1800]))  # the same file, grown
    grown = vigil(*args, tmp_path=tmp_path)
    assert "300 rows scored as they arrived" in grown.stderr
    assert services.stream_checkpoint(vigil_, "lifts")[0] == 1800
