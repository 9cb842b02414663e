"""The `vigil` command, run as users run it (tests.app.cli)."""

import io
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from detection import SCORE_COLUMNS
from sample_data import sample_path
from tests.app.cli import vigil

pytestmark = pytest.mark.slow  # runs `vigil` end to end, over a hundred times


def test_score_writes_input_columns_plus_scores_to_stdout(tmp_path):
    run = vigil("score", sample_path("temperature.csv"), tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    out = pd.read_csv(io.StringIO(run.stdout))
    assert list(out.columns) == ["timestamp", "value", *SCORE_COLUMNS]
    assert len(out) == 720
    assert out["is_anomaly"].sum() > 0
    assert "flagged" in run.stderr


def test_train_then_score_with_the_model(tmp_path):
    train = vigil("train", sample_path("elevators.csv"), "--profile", "sensor", tmp_path=tmp_path)
    assert train.returncode == 0, train.stderr
    version = train.stdout.strip().splitlines()[-1].split()[-1]
    listed = vigil("models", tmp_path=tmp_path)
    assert version in listed.stdout
    out = tmp_path / "scored.csv"
    score = vigil("score", sample_path("elevators.csv"), "--model", version, "--out", out,
                  tmp_path=tmp_path)
    assert score.returncode == 0, score.stderr
    assert pd.read_csv(out).shape[0] == 8064


def test_score_learn_without_a_model_learns_from_the_files_first_reading(tmp_path,
                                                                          monkeypatch):
    """The same bytes whether the file is read whole or, being big, fitted on stretches
    of it and scored in pieces (all of it in stretches here)."""
    from app import scoring
    from app.cli.main import main

    run = vigil("score", sample_path("elevators.csv"), "--learn", tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "learning as it goes" in run.stderr
    out = pd.read_csv(io.StringIO(run.stdout))
    fitted = vigil("score", sample_path("elevators.csv"), tmp_path=tmp_path)
    assert out["is_anomaly"].sum() < pd.read_csv(io.StringIO(fitted.stdout))["is_anomaly"].sum()
    assert out.loc[out["is_anomaly"] == 1, "reasons"].str.contains("a new high").any()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'vigil.db'}")
    monkeypatch.setattr(scoring, "WHOLE_ROWS", 2_000)
    monkeypatch.setattr(scoring, "PIECE_ROWS", 1_000)
    monkeypatch.setattr(scoring, "FIT_ROWS", 10_000)
    assert main(["score", str(sample_path("elevators.csv")), "--learn",
                 "--out", str(tmp_path / "pieces.csv")]) == 0
    assert (tmp_path / "pieces.csv").read_text() == run.stdout
    saved = vigil("score", sample_path("elevators.csv"), "--learn", "--save", tmp_path=tmp_path)
    assert saved.returncode == 2 and "to store that" in saved.stderr  # README's promise
    logins = vigil("score", sample_path("logins.csv"), "--learn", tmp_path=tmp_path)
    assert logins.returncode == 2
    assert logins.stderr.strip() == ("error: learning as it goes scores sensor files; this "
                                     "file's profile is login")
    model = vigil("train", sample_path("logins.csv"), tmp_path=tmp_path)
    version = model.stdout.strip().splitlines()[-1].split()[-1]
    with_model = vigil("score", sample_path("logins.csv"), "--model", version, "--learn",
                       tmp_path=tmp_path)  # the same rule, in the same words
    assert (with_model.returncode, with_model.stderr) == (2, logins.stderr)


def test_zscore_options(tmp_path):
    run = vigil("score", sample_path("temperature.csv"), "--detector", "zscore", "--mean", "21",
                "--std", "3", "--multiplier", "3", tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    out = pd.read_csv(io.StringIO(run.stdout))
    assert set(out.loc[out["is_anomaly"] == 1, "value"].map(lambda v: abs(v - 21) > 9)) == {True}


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("", (), "error: the file is empty"),
        ("timestamp,value\n", (), "error: the file has a header but no data rows"),
        ("timestamp,value\n2025-01-01,1\nnope,2\n", (), "error: column 'timestamp': 1 value(s) are not dates (row 2)"),
        ("a,a\n1,2\n", (), "error: column 'a' appears 2 times"),
        ("timestamp,value\n2025-01-01,1\n2025-01-02,2,3\n", (),
         "error: line 3 of the file has 3 values but the header names 2 columns"),
        ("timestamp,value\n" + "".join(f"2025-01-0{i},{i}\n" for i in range(1, 6)), (),
         "error: the baseline has 5 row(s); at least 20 are needed"),
        ("a,b\n1,2\n3,5\n", ("--model", "missing-version"),
         "error: no model with version or name 'missing-version'"),
        ("a,b\n1,2\n3,5\n", ("--model", "active"), "error: no active generic model"),
        ("a,b\n1,2\n3,5\n", ("--alert",), "error: --alert needs --save"),
        ("a,b\n1,2\n3,5\n", ("--mean", "3"), "error: --mean, --std and --multiplier go with"),
    ],
)
def test_bad_input_exits_2_with_one_error_line(tmp_path, content, args, message):
    path = tmp_path / "in.csv"
    path.write_text(content)
    run = vigil("score", path, *args, tmp_path=tmp_path)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), run.stderr
    assert "Traceback" not in run.stderr


def test_missing_file(tmp_path):
    run = vigil("score", "nope.csv", tmp_path=tmp_path)
    assert run.returncode == 2 and run.stderr.strip() == "error: nope.csv: no such file or folder"


def test_output_is_formula_safe(tmp_path):
    rows = "".join(f"2025-01-01 {h:02d}:00,{h % 5},=HYPERLINK(\"x\")\n" for h in range(24))
    path = tmp_path / "in.csv"
    path.write_text("timestamp,value,note\n" + rows)
    run = vigil("score", path, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "'=HYPERLINK" in run.stdout and "\n=HYPERLINK" not in run.stdout.replace(",=", "\n=")


def test_save_stores_once_and_runs_lists_it(tmp_path):
    first = vigil("score", sample_path("temperature.csv"), "--save", "--out", tmp_path / "o.csv",
                  tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Stored as run 1." in first.stderr
    again = vigil("score", sample_path("temperature.csv"), "--save", "--out", tmp_path / "o.csv",
                  tmp_path=tmp_path)
    assert "Already stored as run 1: nothing was added." in again.stderr
    listed = vigil("runs", tmp_path=tmp_path)
    lines = listed.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[1].split()[0] == "1" and "temperature.csv" in lines[1]


def test_database_down_exits_3_then_replay_stores(tmp_path):
    down = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/vigil"}
    run = vigil("score", sample_path("temperature.csv"), "--save", "--out", tmp_path / "o.csv",
                tmp_path=tmp_path, env=down)
    assert run.returncode == 3, run.stderr
    assert "Nothing was lost" in run.stderr and "Traceback" not in run.stderr
    replay = vigil("db", "replay", tmp_path=tmp_path)
    assert replay.returncode == 0, replay.stderr
    assert "Stored as run 1." in replay.stdout and "1 journaled run(s) stored; the journal is empty" in replay.stdout
    assert "temperature.csv" in vigil("runs", tmp_path=tmp_path).stdout


def test_db_upgrade_and_models_activate_roll_back(tmp_path):
    assert vigil("db", "upgrade", tmp_path=tmp_path).stdout.strip() == \
        "database schema is up to date"
    versions = []
    for _ in range(2):
        train = vigil("train", sample_path("temperature.csv"), "--profile", "sensor",
                      "--activate", tmp_path=tmp_path)
        assert train.returncode == 0, train.stderr
        versions.append(train.stdout.split()[-1])
    listed = vigil("models", tmp_path=tmp_path).stdout
    assert all(v in listed for v in versions)
    assert [line.split()[0] for line in listed.splitlines() if line.endswith("yes")] == \
        [versions[1]]
    back = vigil("models", "--rollback", "sensor", tmp_path=tmp_path)
    assert back.stdout.startswith(f"rolled back: {versions[0]}")
    scored = vigil("score", sample_path("temperature.csv"), "--model", "active",
                   tmp_path=tmp_path)
    assert scored.returncode == 0, scored.stderr


def test_a_named_model_is_listed_and_chosen_by_its_name(tmp_path):
    """Versions were timestamps only: `--model pumps` now takes the newest "pumps"."""
    versions = []
    for _ in range(2):
        train = vigil("train", sample_path("temperature.csv"), "--profile", "sensor",
                      "--name", "pumps", tmp_path=tmp_path)
        assert train.returncode == 0, train.stderr
        versions.append(train.stdout.split("model version ", 1)[1].split()[0])
    listed = vigil("models", tmp_path=tmp_path).stdout.splitlines()
    assert listed[0].split()[:2] == ["name", "version"]
    assert [line.split()[:2] for line in listed[1:]] == [["pumps", v] for v in versions[::-1]]
    by_name = vigil("score", sample_path("temperature.csv"), "--model", "pumps",
                    tmp_path=tmp_path)
    by_version = vigil("score", sample_path("temperature.csv"), "--model", versions[1],
                       tmp_path=tmp_path)
    assert by_name.returncode == 0 and by_name.stdout == by_version.stdout
    for bad in ("active", "9pumps", "a b"):  # told before the baseline is read
        refused = vigil("train", tmp_path / "not-read.csv", "--profile", "sensor",
                        "--name", bad, tmp_path=tmp_path)
        assert refused.returncode == 2 and "error: a model name is 1 to 64" in refused.stderr
    unknown = vigil("score", sample_path("temperature.csv"), "--model", "lifts",
                    tmp_path=tmp_path)
    assert unknown.returncode == 2
    assert "no model with version or name 'lifts' (known: pumps (" in unknown.stderr
    activated = vigil("models", "--activate", "pumps", tmp_path=tmp_path)  # as README says
    assert activated.returncode == 0, activated.stderr
    assert [line.split()[1] for line in vigil("models", tmp_path=tmp_path).stdout.splitlines()
            if line.endswith("yes")] == [versions[1]]


def test_db_prune_deletes_old_runs_by_age_or_the_retention_setting(tmp_path):
    """The database only grew: nothing deleted old runs."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from storage import db
    from storage.schema import DetectionRun

    for name in ("temperature.csv", "elevators.csv"):
        saved = vigil("score", sample_path(name), "--save", "--out", os.devnull,
                      tmp_path=tmp_path)
        assert saved.returncode == 0, saved.stderr
    engine = db.make_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    with engine.begin() as conn:  # the first run was stored 100 days ago
        conn.execute(update(DetectionRun).where(DetectionRun.id == 1).values(
            created_at=datetime.now(UTC) - timedelta(days=100)))
    engine.dispose()
    asked = vigil("db", "prune", tmp_path=tmp_path)
    assert asked.returncode == 2
    assert "prune what? give --older-than 90d, or set RETENTION_DAYS" in asked.stderr
    bad = vigil("db", "prune", "--older-than", "soon", tmp_path=tmp_path)
    assert bad.returncode == 2 and "expected an age like 90d" in bad.stderr
    kept = vigil("db", "prune", "--older-than", "101d", tmp_path=tmp_path)
    assert kept.stdout.startswith("pruned 0 run(s)")
    pruned = vigil("db", "prune", tmp_path=tmp_path, env={"RETENTION_DAYS": "90"})
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith("pruned 1 run(s) stored more than 90 days ago: ")
    listed = vigil("runs", tmp_path=tmp_path).stdout
    assert "elevators.csv" in listed and "temperature.csv" not in listed
    from storage import audit

    engine = db.make_engine(f"sqlite:///{tmp_path / 'vigil.db'}")
    events = audit.events(engine, action="db.prune")
    engine.dispose()
    assert len(events) == 2 and events.iloc[0]["after"]["runs"] == 1


def test_unreachable_database_is_one_error_line(tmp_path):
    run = vigil("runs", tmp_path=tmp_path, env={"DATABASE_URL": "postgresql://x@127.0.0.1:1/v"})
    assert run.returncode == 2
    assert run.stderr.startswith("error: the database failed (OperationalError")
    assert len(run.stderr.strip().splitlines()) == 1


def test_score_save_alert_writes_one_digest_to_the_outbox(tmp_path):
    env = {"ALERT_TO_SECURITY": "soc@x.org"}
    args = ("score", sample_path("logins.csv"), "--save", "--alert", "--out", tmp_path / "o.csv")
    first = vigil(*args, tmp_path=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "Alert for run 1 sent to the security team (soc@x.org)" in first.stderr
    again = vigil(*args, tmp_path=tmp_path, env=env)
    assert "nothing was sent again" in again.stderr
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    log = vigil("alerts", "log", tmp_path=tmp_path)
    assert " sent " in log.stdout and "[Vigil]" in log.stdout
    test = vigil("alert-test", "--to", "me@x.org", tmp_path=tmp_path)
    assert test.returncode == 0 and "outbox:" in test.stdout
    down = vigil("alert-test", "--to", "me@x.org", tmp_path=tmp_path,
                 env={"SMTP_HOST": "127.0.0.1", "SMTP_PORT": "1"})
    assert down.returncode == 1
    assert down.stderr.strip() == \
        "error: smtp://127.0.0.1:1 refused the connection (is the mail server running?)"


def test_plain_score_starts_without_the_database_and_mail_stack(tmp_path):
    """`vigil score` without --save or --model never loads SQLAlchemy, Alembic or Jinja2:
    they cost 0.7 s of startup on every run (bench/speed.py); nor, for a small file,
    numba: numpy walks the forest for a few rows (0.6 s and 130 MB less for this one)."""
    code = ("import sys; from app.cli import main as cli; "
            "assert cli.main(['score', sys.argv[1], '--out', sys.argv[2]]) == 0; "
            "print(sorted({'sqlalchemy', 'alembic', 'jinja2', 'pydantic_settings', 'numba'} "
            "& set(sys.modules)))")
    run = subprocess.run([sys.executable, "-c", code, str(sample_path("temperature.csv")),
                          str(tmp_path / "out.csv")], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
    assert len(pd.read_csv(tmp_path / "out.csv")) == 720


@pytest.mark.parametrize(("detector", "loads_sklearn"),
                         [("isolation_forest", True), ("zscore", False)])
def test_scikit_learn_is_loaded_only_for_the_forest(tmp_path, detector, loads_sklearn):
    """scikit-learn (over a second to import) loads on a thread while the file is read,
    and only when the forest needs it; either way one run gives the same scores."""
    code = ("import sys; from app.cli import main as cli; "
            "code = cli.main(['score', sys.argv[1], '--out', sys.argv[2], '--detector', "
            "sys.argv[3]]); print(code, 'sklearn' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code, str(sample_path("temperature.csv")),
                          str(tmp_path / "out.csv"), detector],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0", str(loads_sklearn)]
    scored = pd.read_csv(tmp_path / "out.csv")
    assert scored["is_anomaly"].sum() > 0


@pytest.mark.slow
def test_a_big_login_file_is_scored_without_numba_as_with_it(tmp_path):
    """A login file's feature rows repeat: 30,000 logins of 200 users from one place each
    are a few hundred distinct rows, walked once each by numpy; numba (0.5 s and 120 MB
    to load) is not loaded for them, and the scores are those of the compiled walk."""
    rng = np.random.default_rng(7)
    n = 30_000
    user = rng.integers(0, 200, n)
    logins = tmp_path / "logins.csv"
    pd.DataFrame({
        "timestamp": pd.to_datetime(np.sort(rng.integers(0, 60 * 86400, n)), unit="s",
                                    origin="2025-01-01"),
        "user": [f"user{u}" for u in user],
        "ip_address": [f"10.{u % 250}.1.{k}" for u, k in zip(user, rng.integers(1, 4, n),
                                                              strict=True)],
        "country": np.array(["Norway", "Germany", "France"])[user % 3],
        "success": rng.random(n) > 0.03,
    }).to_csv(logins, index=False)
    assert logins.stat().st_size >= 100_000  # big enough that numba would be preloaded
    code = ("import sys; from app.cli import main as cli; "
            "sys.argv[3] == 'compiled' and __import__('detection.forest_kernel'); "
            "assert cli.main(['score', sys.argv[1], '--out', sys.argv[2]]) == 0; "
            "print('numba' in sys.modules)")
    loaded = {}
    for walk in ("numpy", "compiled"):
        run = subprocess.run([sys.executable, "-c", code, str(logins),
                              str(tmp_path / f"{walk}.csv"), walk],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        loaded[walk] = run.stdout.strip()
    assert loaded == {"numpy": "False", "compiled": "True"}
    assert (tmp_path / "numpy.csv").read_bytes() == (tmp_path / "compiled.csv").read_bytes()
    assert pd.read_csv(tmp_path / "numpy.csv")["is_anomaly"].sum() > 0


def test_a_reader_that_stops_early_is_not_an_error(tmp_path):
    """`vigil score big.csv | head` closes the pipe after a few lines: exit 0, no traceback."""
    big = tmp_path / "big.csv"
    n = 200_000  # scored output far beyond what a pipe buffers
    pd.DataFrame({"timestamp": pd.date_range("2025-01-01", periods=n, freq="min"),
                  "value": np.sin(np.arange(n) / 500)}).to_csv(big, index=False)
    run = subprocess.Popen([sys.executable, "-m", "app", "score", str(big)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    assert run.stdout.readline().startswith(b'"timestamp"')
    run.stdout.close()
    assert run.wait(timeout=300) == 0
    errors = run.stderr.read().decode()
    run.stderr.close()
    assert "Traceback" not in errors and "Error" not in errors, errors


def test_replay_names_an_entry_it_sets_aside(tmp_path):
    down = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/vigil"}
    run = vigil("score", sample_path("temperature.csv"), "--save", "--out", tmp_path / "o.csv",
                tmp_path=tmp_path, env=down)
    assert run.returncode == 3, run.stderr
    (entry,) = [p for p in (tmp_path / "fallback").iterdir() if not p.name.startswith(".")]
    (entry / "anomalies.csv").unlink()
    replay = vigil("db", "replay", tmp_path=tmp_path)
    assert replay.returncode == 2 and "Traceback" not in replay.stderr
    assert f"Set aside {tmp_path / 'fallback' / 'rejected' / entry.name}" in replay.stdout
    assert "0 journaled run(s) stored, 1 set aside" in replay.stdout


def test_alerts_log_lists_sent_and_failed_alerts(tmp_path):
    env = {"ALERT_TO_SECURITY": "soc@x.org"}
    sent = vigil("score", sample_path("logins.csv"), "--save", "--alert", "--out",
                 tmp_path / "o.csv", tmp_path=tmp_path, env=env)
    assert sent.returncode == 0, sent.stderr
    failed = vigil("score", sample_path("logins.csv"), "--save", "--alert", "--contamination",
                   "0.05", "--out", tmp_path / "o.csv", tmp_path=tmp_path,
                   env={**env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": "1",
                        "SMTP_SECURITY": "none"})
    assert failed.returncode == 1, failed.stderr
    log = vigil("alerts", "log", tmp_path=tmp_path)
    assert log.returncode == 0, log.stderr
    lines = log.stdout.strip().splitlines()
    assert len(lines) == 3 and " failed " in lines[1] and " sent " in lines[2]


def test_outbox_that_is_a_file_is_one_error_line(tmp_path):
    (tmp_path / "blocker").write_text("")
    run = vigil("alert-test", "--to", "me@x.org", tmp_path=tmp_path,
                env={"ALERT_OUTBOX_DIR": str(tmp_path / "blocker")})
    assert run.returncode == 1
    assert run.stderr.startswith(f"error: the outbox folder {tmp_path / 'blocker'} cannot be "
                                 "written")
    assert len(run.stderr.strip().splitlines()) == 1


def test_formula_headers_are_neutralised_in_the_output(tmp_path):
    source = tmp_path / "in.csv"
    source.write_text('timestamp,"=HYPERLINK(""http://x"",""y"")",@SUM(A1)\n' +
                      "".join(f"2025-01-01 00:{i:02d}:00,{i % 7},{i % 5}\n" for i in range(60)))
    run = vigil("score", source, "--out", tmp_path / "out.csv", tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header.startswith('"timestamp","\'=HYPERLINK(""http://x"",""y"")","\'@SUM(A1)"')


def test_a_file_of_5000_columns_prints_no_library_warnings(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(40, 5000)), columns=[f"m{i}" for i in range(5000)])
    frame.insert(0, "timestamp", pd.date_range("2025-01-01", periods=40, freq="min"))
    frame.to_csv(tmp_path / "wide.csv", index=False)
    run = vigil("score", tmp_path / "wide.csv", "--out", tmp_path / "out.csv", tmp_path=tmp_path,
                process=True)  # what a library prints, up to its exit
    assert run.returncode == 0, run.stderr
    assert "Warning" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_runs_prints_control_characters_in_file_names_escaped(tmp_path):
    name = "evil\x1b[2J\x1b]0;owned\x07\rname.csv"
    (tmp_path / name).write_bytes(sample_path("temperature.csv").read_bytes())
    saved = vigil("score", tmp_path / name, "--save", "--out", tmp_path / "o.csv",
                  tmp_path=tmp_path)
    assert saved.returncode == 0, saved.stderr
    listed = vigil("runs", tmp_path=tmp_path)
    assert "\x1b" not in listed.stdout and "\r" not in listed.stdout
    assert "evil\\x1b[2J\\x1b]0;owned\\x07\\rname.csv" in listed.stdout


@pytest.mark.parametrize(("url", "message"), [
    ("foo://x/y", "error: DATABASE_URL foo://x/y: unknown database 'foo'"),
    ("postgresql://u:secret@127.0.0.1:notaport/db",
     "error: DATABASE_URL is not a database URL (invalid literal for int()"),
    ("mysql://u:secret@127.0.0.1/db",
     "error: DATABASE_URL mysql://u:***@127.0.0.1/db: the driver for 'mysql' is not installed"),
])
def test_a_bad_database_url_is_explained_without_its_password(tmp_path, url, message):
    run = vigil("runs", tmp_path=tmp_path, env={"DATABASE_URL": url})
    assert run.returncode == 2
    assert run.stderr.startswith(message) and "secret" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_a_negative_limit_is_a_usage_error_not_a_database_failure(tmp_path):
    run = vigil("runs", "--limit", "-1", tmp_path=tmp_path)
    assert run.returncode == 2
    assert "argument --limit: must be at least 1, got -1" in run.stderr
    assert "database" not in run.stderr


def test_users_and_tokens_from_the_command_line(tmp_path):
    """Passwords from standard input; a token belongs to a user and is printed once;
    bad requests are one error line with exit 2."""
    added = vigil("users", "add", "ana", "--role", "analyst", "--password-stdin",
                  "--email", "ana@x.org", tmp_path=tmp_path, stdin="correct horse battery\n")
    assert added.returncode == 0, added.stderr
    listed = vigil("users", "list", tmp_path=tmp_path)
    assert listed.stdout.splitlines() == ["ana  analyst  ana@x.org  enabled"]
    too_much = vigil("tokens", "add", "job", "--role", "admin", "--user", "ana",
                     tmp_path=tmp_path)
    assert too_much.returncode == 2
    assert too_much.stderr.strip() == ("error: a token carries at most its user's role: ana "
                                       "is analyst, the token asks for admin")
    made = vigil("tokens", "add", "job", "--role", "viewer", "--user", "ana", tmp_path=tmp_path)
    assert made.returncode == 0 and made.stdout.startswith("vgl_")
    assert "shown this once" in made.stderr
    short = vigil("users", "passwd", "ana", "--password-stdin", tmp_path=tmp_path, stdin="x\n")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    assert vigil("users", "disable", "ana", tmp_path=tmp_path).returncode == 0
    assert "disabled" in vigil("users", "list", tmp_path=tmp_path).stdout
    missing = vigil("users", "disable", "nobody", tmp_path=tmp_path)
    assert missing.returncode == 2 and "no user named 'nobody'" in missing.stderr


def test_bootstrap_creates_the_administrator_once(tmp_path):
    env = {"VIGIL_ADMIN_USER": "root-admin", "VIGIL_ADMIN_PASSWORD": "correct horse battery"}
    first = vigil("users", "bootstrap", tmp_path=tmp_path, env=env)
    assert first.returncode == 0 and "created the administrator root-admin" in first.stdout
    again = vigil("users", "bootstrap", tmp_path=tmp_path, env=env)
    assert "accounts exist already" in again.stdout
    (tmp_path / "other").mkdir()
    unset = vigil("users", "bootstrap", tmp_path=tmp_path / "other")
    assert "not set: nothing to do" in unset.stdout


def test_a_model_whose_source_has_shifted_is_called_stale_in_score_and_models(tmp_path):
    from sample_data.generate import START, machine

    history, _ = machine(np.random.default_rng(0), anomalies=False)
    later, _ = machine(np.random.default_rng(1), anomalies=False,
                       start=START + pd.Timedelta(days=30))
    later["temperature"] += 6.0  # the machine now runs warmer
    history.to_csv(tmp_path / "history.csv", index=False)
    later.to_csv(tmp_path / "later.csv", index=False)
    train = vigil("train", "history.csv", "--profile", "sensor", tmp_path=tmp_path)
    version = train.stdout.strip().splitlines()[-1].split()[-1]
    for args in [(), ("--save",)]:  # in pieces (bounded memory), and whole to store it
        score = vigil("score", "later.csv", "--model", version, "--out", "o.csv", *args,
                      tmp_path=tmp_path)
        assert score.returncode == 0, score.stderr
        stale = [line for line in score.stderr.splitlines() if "the model is stale" in line]
        assert len(stale) == 1 and "temperature (" in stale[0], score.stderr
    listed = vigil("models", tmp_path=tmp_path).stdout.splitlines()
    assert "drift" in listed[0] and "age" in listed[0]
    row = next(line for line in listed if line.split()[:1] == [version])  # no name
    assert "0d" in row and "%" in row and row.endswith("stale: retrain")


def _ragged_at(line: int, tmp_path):
    """The elevators sample with a line of too many values at ``line`` of the file."""
    rows = sample_path("elevators.csv").read_text().splitlines(keepends=True)
    path = tmp_path / "ragged.csv"
    path.write_text("".join(rows[:line - 1]) + "2025-01-01 00:00:00,E1,1,2,3,4,5\n"
                    + "".join(rows[line - 1:]))
    return path


def test_out_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """An error in a later piece leaves --out as it was (not the rows before the error,
    looking like a result); a good run replaces it, keeping its permissions; a folder
    that is not there is told before any work; /dev/null stays a device."""
    import stat

    from app import scoring
    from app.cli.main import main

    model = vigil("train", sample_path("elevators.csv"), "--name", "lifts", tmp_path=tmp_path)
    assert model.returncode == 0, model.stderr
    out = tmp_path / "scored.csv"
    out.write_text("an earlier result\n")
    out.chmod(0o640)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'vigil.db'}")
    monkeypatch.setattr(scoring, "PIECE_ROWS", 1_000)
    assert main(["score", str(_ragged_at(7001, tmp_path)), "--model", "lifts",
                 "--out", str(out)]) == 2
    assert out.read_text() == "an earlier result\n"
    assert not list(tmp_path.glob(".*.part"))
    assert main(["score", str(sample_path("elevators.csv")), "--model", "lifts",
                 "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 8064
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert not list(tmp_path.glob(".*.part"))

    nowhere = vigil("score", sample_path("elevators.csv"), "--out",
                    tmp_path / "missing" / "o.csv", tmp_path=tmp_path)
    assert nowhere.returncode == 2
    assert nowhere.stderr == (f"error: --out {tmp_path / 'missing' / 'o.csv'}: cannot write "
                              "there (No such file or directory)\n")  # and nothing scored
    discarded = vigil("score", sample_path("temperature.csv"), "--out", os.devnull,
                      tmp_path=tmp_path)
    assert discarded.returncode == 0, discarded.stderr
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_ctrl_c_during_a_score_leaves_out_as_it_was_without_a_traceback(tmp_path):
    import signal

    from tests.app.cli import started

    rng = np.random.default_rng(0)
    rows = 150_000
    pd.DataFrame({"timestamp": pd.date_range("2025-01-01", periods=rows, freq="1min"),
                  "value": rng.normal(20, 2, rows).round(2)}).to_csv(tmp_path / "big.csv",
                                                                     index=False)
    out = tmp_path / "scored.csv"
    out.write_text("an earlier result\n")
    # Ctrl-C as a terminal sends it, also where the test runs as a background job (which
    # starts its children with SIGINT ignored).
    run = started("score", tmp_path / "big.csv", "--out", out, tmp_path=tmp_path,
                  stderr=subprocess.PIPE, text=True,
                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    while not list(tmp_path.glob(".scored.csv.*.part")):  # the run has begun its work
        assert run.poll() is None, run.stderr.read()
        time.sleep(0.01)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert err == "interrupted: stopped before the end\n"
    assert out.read_text() == "an earlier result\n"
    assert not list(tmp_path.glob(".*.part"))


def test_a_full_disk_is_one_error_line_saying_where_the_rows_were_going(tmp_path):
    """/dev/full fails every write with ENOSPC, as a full disk does: `vigil score` and
    `vigil stream`, to --out or to standard output, say so in one line (a traceback
    before)."""
    from tests.app.cli import started

    full = "/dev/full"
    model = vigil("train", sample_path("elevators.csv"), "--name", "lifts", tmp_path=tmp_path)
    assert model.returncode == 0, model.stderr
    for command in (("score", sample_path("temperature.csv")),
                    ("stream", sample_path("elevators.csv"), "--model", "lifts")):
        to_file = vigil(*command, "--out", full, tmp_path=tmp_path)
        assert (to_file.returncode, to_file.stderr) == (
            2, f"error: --out {full}: cannot write there (No space left on device)\n")
        with open(full, "wb") as stdout:
            to_stdout = started(*command, tmp_path=tmp_path, stdout=stdout,
                                stderr=subprocess.PIPE, text=True)
            _, err = to_stdout.communicate(timeout=120)
        assert (to_stdout.returncode, err) == (
            2, "error: standard output: cannot write there (No space left on device)\n")
