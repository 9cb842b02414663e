"""`vigil watch`: good files are stored and alerted once, bad ones explained, half-written
ones left alone."""

import os
import signal
import subprocess
import time

import pytest

from sample_data import sample_path
from tests.app.cli import started, vigil

ENV = {"ALERT_TO_MAINTENANCE": "ops@x.org"}

pytestmark = pytest.mark.slow  # runs `vigil watch` in processes


def land(folder, name, content: bytes, age_s: float = 60.0):
    path = folder / name
    path.write_bytes(content)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def activated(tmp_path) -> None:
    """The elevators sample's model, active for sensor files (through the CLI)."""
    trained = vigil("train", sample_path("elevators.csv"), "--profile", "sensor", "--activate",
                    tmp_path=tmp_path)
    assert trained.returncode == 0, trained.stderr


def test_watch_sorts_files_into_done_and_failed(tmp_path):
    activated(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = sample_path("elevators.csv").read_bytes()
    land(inbox, "good.csv", good)
    land(inbox, "bad.csv", b"timestamp,value\n2025-01-01,1\nnope,2\n")
    land(inbox, "logins.csv", sample_path("logins.csv").read_bytes())  # no active login model
    # Still being written: its time lies ahead, so the watcher's start-up (seconds on a
    # busy machine) cannot age it past the settle time.
    land(inbox, "half.csv", good[: len(good) // 2], age_s=-300)

    run = vigil("watch", inbox, "--once", tmp_path=tmp_path, env=ENV)
    # `--once` said "3 file(s) processed" and exited 0 with two files in failed/.
    assert run.returncode == 2, run.stderr
    assert f"1 file(s) done, 2 failed (their reasons in {inbox / 'failed'})" in run.stdout
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["good.csv"]
    assert sorted(p.name for p in (inbox / "failed").iterdir()) == [
        "bad.csv", "bad.csv.error.txt", "logins.csv", "logins.csv.error.txt"]
    reason = (inbox / "failed" / "bad.csv.error.txt").read_text()
    assert reason.startswith("error: column 'timestamp': 1 value(s) are not dates (row 2)")
    assert reason.count("\n") == 1
    assert "no active login model" in (inbox / "failed" / "logins.csv.error.txt").read_text()
    assert [p.name for p in inbox.iterdir() if p.is_file()] == ["half.csv"]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1

    # The same file landing again (a restart after saving, or a resend) adds nothing.
    land(inbox, "good.csv", good)
    land(inbox, "half.csv", good[: len(good) // 2], age_s=-300)  # still being written
    again = vigil("watch", inbox, "--once", tmp_path=tmp_path, env=ENV)
    assert again.returncode == 0 and "1 file(s) done, 0 failed" in again.stdout
    assert "Already stored as run 1" in again.stdout and "nothing was sent again" in again.stdout
    assert len(list((inbox / "done").iterdir())) == 2
    assert len(vigil("runs", tmp_path=tmp_path).stdout.strip().splitlines()) == 2
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


def test_watch_reads_no_link_and_quotes_no_value(tmp_path):
    """`ln -s .env in/env.csv` handed a private file to everyone who may read runs; a
    hard link does the same. Neither is read; an error file quotes column names only."""
    activated(tmp_path)
    private = tmp_path / "private"
    private.mkdir()
    secret = private / ".env"
    secret.write_text("DATABASE_URL=postgresql://vigil:s3cret-pw@db/vigil\n")
    readings = private / "readings.csv"  # CSV-shaped: it would be stored as a run
    readings.write_bytes(sample_path("elevators.csv").read_bytes())
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "env.csv").symlink_to(secret)
    (inbox / "lifts.csv").symlink_to(readings)
    os.link(readings, inbox / "copy.csv")
    for path in inbox.iterdir():
        os.utime(path, (time.time() - 60,) * 2, follow_symlinks=False)
    land(inbox, "bad.csv", b"timestamp,value\n2025-01-01,1\n2025-01-02,top-secret-value\n")

    run = vigil("watch", inbox, "--once", tmp_path=tmp_path, env=ENV)
    assert run.returncode == 2, run.stderr  # bad.csv failed
    for name, why in [("env.csv", "a symbolic link"), ("lifts.csv", "a symbolic link"),
                      ("copy.csv", "a hard link")]:
        assert f"{name}: skipped: {why}" in run.stdout
        assert (inbox / name).exists() or (inbox / name).is_symlink()  # left in place
    assert "s3cret" not in run.stdout
    assert "0 file(s) done, 1 failed" in run.stdout  # bad.csv only
    assert vigil("runs", tmp_path=tmp_path).stdout.count("\n") <= 1  # nothing stored
    reason = (inbox / "failed" / "bad.csv.error.txt").read_text()
    assert "top-secret-value" not in reason and "'value'" in reason, reason


def test_an_error_file_keeps_column_names_and_drops_the_files_values():
    from app.live.watch import without_values

    data = b"user,time\n'quoted',2025\nsecret,x\n"
    message = "column 'user' holds 'secret' in row 2; the model needs \"time\" and 'ip'"
    assert without_values(message, data) == \
        "column 'user' holds '…' in row 2; the model needs \"time\" and 'ip'"


def test_a_file_waits_while_the_database_is_down_and_for_its_last_line(tmp_path):
    """Moved to failed/ for good with the database down (README promised it stays); a
    writer pausing mid-line had the rows so far stored as a complete run."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good = sample_path("elevators.csv").read_bytes()
    land(inbox, "lifts.csv", good)
    down = vigil("watch", inbox, "--once", tmp_path=tmp_path,
                 env={**ENV, "DATABASE_URL": "postgresql://postgres@127.0.0.1:9/nowhere"})
    assert down.returncode == 0, down.stderr
    assert "the database failed" in down.stdout and "tried again" in down.stdout
    assert (inbox / "lifts.csv").exists() and not (inbox / "failed").exists()

    activated(tmp_path)
    (inbox / "lifts.csv").unlink()
    half = good[: good.index(b"\n", len(good) // 2) + 20]  # mid-line
    land(inbox, "slow.csv", half, age_s=10)
    paused = vigil("watch", inbox, "--once", tmp_path=tmp_path, env=ENV)
    assert "slow.csv: waits: its last line has no line end yet" in paused.stdout
    assert (inbox / "slow.csv").exists()
    assert vigil("runs", tmp_path=tmp_path).stdout.count("\n") <= 1  # nothing stored
    land(inbox, "slow.csv", good, age_s=10)  # the writer finished
    done = vigil("watch", inbox, "--once", tmp_path=tmp_path, env=ENV)
    assert "1 file(s) done, 0 failed" in done.stdout, done.stdout
    assert "8064" in vigil("runs", tmp_path=tmp_path).stdout


def test_a_running_watch_stops_on_sigterm_as_on_ctrl_c(tmp_path):
    """`docker stop` and systemd send SIGTERM: the watcher ends as Ctrl-C ends it (status
    0, what it finished stored), not killed where it stands."""
    activated(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    land(inbox, "lifts.csv", sample_path("elevators.csv").read_bytes())
    process = started("watch", inbox, "--interval", "0.2", tmp_path=tmp_path, env=ENV,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (inbox / "done" / "lifts.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "lifts.csv" in out and "Traceback" not in err
    assert (inbox / "done" / "lifts.csv").exists()
    assert "8064" in vigil("runs", tmp_path=tmp_path).stdout


def test_a_folder_is_scored_with_the_model_it_is_given(tmp_path):
    """One active sensor model served every folder: a pump file failed ("the model was
    trained on 'revolutions', 'humidity', 'vibration'") while `watch --once` exited 0."""
    activated(tmp_path)  # the elevators' model is the active sensor model
    pumps = vigil("train", sample_path("temperature.csv"), "--profile", "sensor", "--name",
                  "pumps", tmp_path=tmp_path)
    assert pumps.returncode == 0, pumps.stderr
    assert "(pumps: --model pumps takes its newest version)" in pumps.stdout
    inbox = tmp_path / "pumps"
    inbox.mkdir()
    land(inbox, "pump-1.csv", sample_path("temperature.csv").read_bytes())
    wrong = vigil("watch", inbox, "--once", tmp_path=tmp_path, env=ENV)
    assert wrong.returncode == 2 and "0 file(s) done, 1 failed" in wrong.stdout
    assert "the model was trained on" in wrong.stdout
    land(inbox, "pump-2.csv", sample_path("temperature.csv").read_bytes())
    right = vigil("watch", inbox, "--once", "--model", "pumps", tmp_path=tmp_path, env=ENV)
    assert right.returncode == 0, right.stdout + right.stderr
    assert "1 file(s) done, 0 failed" in right.stdout
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["pump-2.csv"]


def test_a_file_name_that_is_not_utf8_is_stored_under_a_readable_name(tmp_path):
    activated(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    name = os.path.join(os.fsencode(inbox), b"caf\xe9.csv")
    with open(name, "wb") as handle:
        handle.write(sample_path("elevators.csv").read_bytes())
    os.utime(name, (time.time() - 60,) * 2)
    run = vigil("watch", inbox, "--once", tmp_path=tmp_path, env=ENV)
    assert run.returncode == 0, run.stderr
    assert "1 file(s) done, 0 failed" in run.stdout
    assert "caf\ufffd.csv" in vigil("runs", tmp_path=tmp_path).stdout
    assert not (inbox / "failed").exists()


def test_a_file_moved_away_while_it_is_scored_is_no_traceback(tmp_path, monkeypatch):
    """It raised a traceback and every restart died on the same file."""
    from app import services
    from app.live import watch
    from app.settings import Settings
    from app.vigil import Vigil

    vigil_ = Vigil(Settings(database_url=f"sqlite:///{tmp_path / 'vigil.db'}",
                            alert_outbox_dir=tmp_path / "outbox"))
    services.train(vigil_, services.read_dataset(sample_path("temperature.csv")), activate=True)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = land(inbox, "lifts.csv", sample_path("temperature.csv").read_bytes())
    store = services.store

    def store_then_vanish(*args, **kwargs):
        report = store(*args, **kwargs)
        path.rename(tmp_path / "elsewhere.csv")
        return report

    monkeypatch.setattr(services, "store", store_then_vanish)
    outcome = watch.process(vigil_, path)
    assert outcome.moved_to is None and "skipped for now" in outcome.message


def test_a_big_file_is_scored_in_pieces_as_an_upload_is(tmp_path, monkeypatch):
    """Read whole, an 80 MB file peaked at 2.7 GB and a 1 GB one ran out of memory."""
    from app import scoring, services
    from app.live import watch
    from app.settings import Settings
    from app.vigil import Vigil

    vigil_ = Vigil(Settings(database_url=f"sqlite:///{tmp_path / 'vigil.db'}",
                            alert_outbox_dir=tmp_path / "outbox"))
    services.train(vigil_, services.read_dataset(sample_path("elevators.csv")), activate=True)
    monkeypatch.setattr(scoring, "WHOLE_ROWS", 1000)  # "big" from 1,000 rows
    monkeypatch.setattr(scoring, "PIECE_ROWS", 1000)
    pieces = []
    scored_pieces = scoring.scored_pieces
    monkeypatch.setattr(scoring, "scored_pieces", lambda *a, **k: (
        pieces.append(1) or piece for piece in scored_pieces(*a, **k)))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = land(inbox, "lifts.csv", sample_path("elevators.csv").read_bytes())
    outcome = watch.process(vigil_, path)
    assert outcome.moved_to is not None and outcome.moved_to.parent.name == "done"
    assert len(pieces) == 9  # 8,064 rows, 1,000 a piece
    (run,) = services.list_runs(vigil_)
    assert run.total_rows == 8064
