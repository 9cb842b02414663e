"""A model trained from stored runs: their rows, without the ones reviewed as confirmed."""

import io

import numpy as np
import pandas as pd
import pytest

from app import services
from app.settings import Settings
from app.vigil import Actor, Vigil
from detection import read_csv
from sample_data import sample_path
from storage import journal, runs
from storage.errors import StorageError
from tests.app.cli import vigil as vigil_cli
from tests.conftest import to_csv_bytes

ELEVATORS = read_csv(sample_path("elevators.csv"))
HALF = len(ELEVATORS) // 2

pytestmark = pytest.mark.slow  # runs `vigil train` in processes


@pytest.fixture
def vigil(database_url, tmp_path) -> Vigil:
    return Vigil(Settings(database_url=database_url, journal_dir=tmp_path / "j",
                          alert_outbox_dir=tmp_path / "outbox"))


def save(vigil, frame, name):
    result = services.analyze(vigil, services.read_dataset(to_csv_bytes(frame)))
    return services.save(vigil, result, source_name=name,
                         file_sha256=name.encode().hex().ljust(64, "0")[:64]).run_id


def test_a_model_from_runs_is_the_model_of_their_rows_without_the_confirmed_ones(vigil):
    first = save(vigil, ELEVATORS.iloc[:HALF], "first.csv")
    second = save(vigil, ELEVATORS.iloc[HALF:], "second.csv")
    flagged = services.query_anomalies(vigil, services.AnomalyFilter(run_ids=[first]),
                                       limit=None)
    confirmed = flagged.nlargest(5, "anomaly_score")
    services.review(vigil.acting_as(Actor("ana", "analyst")), confirmed["id"].tolist(),
                    "confirmed")

    meta = services.train_from_runs(vigil, runs=[first, second])
    assert meta["runs"] == [first, second] and meta["left_out"] == 5
    assert meta["training_rows"] == len(ELEVATORS) - 5
    assert meta["source_name"] == f"runs {first}, {second}"

    # The same rows from a file give the same model: both score a file alike.
    kept = ELEVATORS.drop(index=confirmed["row_number"].tolist())  # row numbers of run 1
    from_file = services.train(vigil, services.read_dataset(to_csv_bytes(kept)))
    probe = services.read_dataset(sample_path("elevators.csv"))
    scores = [services.analyze(vigil, probe, model_version=m["version"]).frame["anomaly_score"]
              for m in (meta, from_file)]
    np.testing.assert_array_equal(scores[0], scores[1])
    assert meta["training_rows"] == from_file["training_rows"]


def test_runs_since_a_date_of_one_profile(vigil):
    first = save(vigil, ELEVATORS.iloc[:HALF], "first.csv")
    second = save(vigil, ELEVATORS.iloc[HALF:], "second.csv")
    untimed = save(vigil, ELEVATORS[["revolutions", "humidity", "vibration"]], "untimed.csv")
    since = pd.Timestamp("2000-01-01", tz="UTC").to_pydatetime()
    meta = services.train_from_runs(vigil, since=since, profile="sensor")
    assert meta["runs"] == [first, second] and meta["profile"] == "sensor"
    generic = services.train_from_runs(vigil, since=since, profile="generic")
    assert generic["runs"] == [untimed] and generic["training_rows"] == len(ELEVATORS)
    later = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=1)
    with pytest.raises(StorageError, match="no sensor run since"):
        services.train_from_runs(vigil, since=later.to_pydatetime(), profile="sensor")


def test_runs_that_cannot_be_trained_from_are_named(vigil):
    sensor = save(vigil, ELEVATORS.iloc[:HALF], "first.csv")
    logins = save(vigil, read_csv(sample_path("logins.csv")), "logins.csv")
    other = save(vigil, ELEVATORS.iloc[HALF:].drop(columns=["humidity"]), "no-humidity.csv")
    with pytest.raises(StorageError, match=f"run {logins} kept no rows"):
        services.train_from_runs(vigil, runs=[sensor, logins])
    with pytest.raises(StorageError, match=f"run {other} is not like run {sensor}"):
        services.train_from_runs(vigil, runs=[sensor, other])
    with pytest.raises(StorageError, match="no run 999 is stored"):
        services.train_from_runs(vigil, runs=[sensor, 999])
    with pytest.raises(StorageError, match="needs a profile: one of sensor, generic"):
        services.train_from_runs(vigil, since=pd.Timestamp("2000-01-01", tz="UTC"),
                                 profile="login")
    assert [r["id"] for r in services.runs_to_train_from(vigil)] == [other, sensor]


def test_training_from_runs_is_for_admins(vigil):
    run = save(vigil, ELEVATORS.iloc[:HALF], "first.csv")
    with pytest.raises(services.NotAllowedError):
        services.train_from_runs(vigil.acting_as(Actor("ana", "analyst")), runs=[run])


def test_a_journaled_run_keeps_its_rows(tmp_path):
    result = services.analyze(Vigil(Settings(database_url=f"sqlite:///{tmp_path / 'v.db'}")),
                              services.read_dataset(sample_path("temperature.csv")))
    run = runs.RunToSave.from_result(result, source_name="t.csv", file_sha256="a" * 64,
                                     keep_inputs=True)
    back = journal.read(journal.write(tmp_path / "j", run))
    assert back.inputs == run.inputs and len(pd.read_parquet(io.BytesIO(back.inputs))) == 720


def test_vigil_train_from_runs_and_since(tmp_path):
    for name, rows in (("a.csv", ELEVATORS.iloc[:HALF]), ("b.csv", ELEVATORS.iloc[HALF:])):
        rows.to_csv(tmp_path / name, index=False)
        saved = vigil_cli("score", tmp_path / name, "--save", "--out", tmp_path / "out.csv",
                          tmp_path=tmp_path)
        assert saved.returncode == 0, saved.stderr
    trained = vigil_cli("train", "--from-runs", 1, 2, tmp_path=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "trained on runs 1, 2: 0 row(s) reviewed as confirmed left out" in trained.stdout
    assert f"on {len(ELEVATORS)} sensor rows" in trained.stdout
    since = vigil_cli("train", "--since", "2000-01-01", "--profile", "sensor", "--activate",
                      tmp_path=tmp_path)
    assert since.returncode == 0 and "(active)" in since.stdout, since.stderr
    for args, message in (
            (["--since", "2000-01-01"], "--since needs --profile sensor"),
            (["--since", "yesterday", "--profile", "sensor"], "expected a date like"),
            ([tmp_path / "a.csv", "--from-runs", "1"], "train on one of"),
            (["--from-runs", "7"], "no run 7 is stored")):
        refused = vigil_cli("train", *args, tmp_path=tmp_path)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
