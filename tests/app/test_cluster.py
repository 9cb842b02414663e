"""Datasets on a Dask cluster (`--engine dask`): a real `dask scheduler` and two `dask
worker` processes on loopback score as one process does, store each partition once, and
survive a worker killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from app import cluster, scoring
from detection import SCORE_COLUMNS, fit
from sample_data import sample_path
from storage import db, registry
from storage.schema import Anomaly, DetectionRun, Incident, RunPartition
from tests.conftest import _empty_tables, to_csv_bytes
from tests.smtp import free_port

pytestmark = pytest.mark.slow  # starts a scheduler and worker processes

DASK = Path(sys.executable).parent / "dask"


class DaskCluster:
    """A scheduler and its workers, each a process of its own."""

    def __init__(self, workers: int = 2):
        self.address = f"tcp://127.0.0.1:{free_port()}"
        port = self.address.rsplit(":", 1)[1]
        self.scheduler = subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", port,
             "--dashboard-address", "127.0.0.1:0", "--no-show"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.workers = [self.start_worker(f"w{i}") for i in range(workers)]
        self.wait_for(workers)

    def start_worker(self, name: str) -> subprocess.Popen:
        # No nanny: a worker killed stays dead, its tasks go to the others.
        return subprocess.Popen(
            [DASK, "worker", self.address, "--name", name, "--nthreads", "1",
             "--no-nanny", "--memory-limit", "2GiB", "--dashboard-address", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_for(self, workers: int) -> None:
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=60)

    def stop(self) -> None:
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.workers, self.scheduler]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def dask_cluster():
    found = DaskCluster()
    yield found
    found.stop()


@pytest.fixture(scope="module")
def client(dask_cluster):
    from distributed import Client

    with Client(dask_cluster.address) as connected:
        yield connected


def machines_frame(machines: int = 6, rows: int = 700, seed: int = 0) -> pd.DataFrame:
    """Readings of several machines, interleaved by time, with a few spikes."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2026-01-01", periods=rows, freq="1min")
    parts = []
    for m in range(machines):
        level = 20 + 3 * m
        temperature = level + np.sin(np.arange(rows) / 40) + rng.normal(0, 0.3, rows)
        vibration = 5 + rng.normal(0, 0.2, rows)
        spikes = rng.choice(rows, 4, replace=False)
        vibration[spikes] += 6
        parts.append(pd.DataFrame({"timestamp": times, "machine": f"M{m}",
                                   "temperature": temperature.round(3),
                                   "vibration": vibration.round(3)}))
    frame = pd.concat(parts).sort_values("timestamp", kind="stable").reset_index(drop=True)
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    return frame


def write_dataset(frame: pd.DataFrame, folder: Path, files: int = 3) -> list[Path]:
    """``frame`` cut into ``files`` files, CSV and Parquet by turns."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, part in enumerate(np.array_split(np.arange(len(frame)), files)):
        path = folder / f"part{i}.{'parquet' if i % 2 else 'csv'}"
        piece = frame.iloc[part]
        if i % 2:
            piece.to_parquet(path, index=False)
        else:
            piece.to_csv(path, index=False)
        paths.append(path)
    return paths


def read_parts(out: Path) -> pd.DataFrame:
    parts = [pd.read_parquet(p) for p in sorted(out.glob("part-*.parquet"))]
    return pd.concat(parts).set_index("row").sort_index()


def assert_same_scores(parts: pd.DataFrame, one: pd.DataFrame) -> None:
    assert parts.index.tolist() == one.index.tolist()  # every row once, numbered alike
    assert np.allclose(parts["anomaly_score"].to_numpy(), one["anomaly_score"].to_numpy(),
                       atol=1e-6, rtol=0)
    assert (parts["is_anomaly"].to_numpy() == one["is_anomaly"].to_numpy()).all()
    assert (parts["severity"].to_numpy() == one["severity"].to_numpy()).all()
    assert (parts["reasons"].to_numpy() == one["reasons"].to_numpy()).all()


def test_sensor_dataset_scores_on_two_workers_as_in_one_process(client, tmp_path):
    frame = machines_frame()
    model = fit(scoring.read_dataset(to_csv_bytes(frame.iloc[:1200])))
    files = write_dataset(frame.iloc[1200:], tmp_path / "readings")
    one = model.score(scoring.read_dataset(scoring.dataset_files(tmp_path / "readings")))
    plan = cluster.plan(files, profile="auto", partitions=5)
    assert plan.key == "machine"
    done = cluster.score(client, plan, model, out=str(tmp_path / "out"))
    parts = read_parts(tmp_path / "out")
    assert_same_scores(parts, one.frame)
    assert done.rows == len(one.frame) and done.flagged == int(one.frame["is_anomaly"].sum())
    assert done.flagged > 0
    # Each machine's rows are in one partition: its windows saw all of them.
    assert (parts.groupby("machine")["anomaly_score"].size() > 0).all()
    per_file = {p.name for p in (tmp_path / "out").glob("part-*.parquet")}
    for name in per_file:
        assert pd.read_parquet(tmp_path / "out" / name)["machine"].nunique() >= 1
    assert set(SCORE_COLUMNS) <= set(parts.columns)


def test_login_dataset_scores_on_two_workers_as_in_one_process(client, tmp_path):
    """Users are dealt into partitions; what a user's score reads of the others (a device
    no one used before, failures from one address across users) comes from every file."""
    logins = pd.read_csv(sample_path("logins.csv"))
    cut = len(logins) // 4
    model = fit(scoring.read_dataset(to_csv_bytes(logins.iloc[:cut])))
    files = write_dataset(logins.iloc[cut:], tmp_path / "logins")
    one = model.score(scoring.read_dataset(files))
    reasons = " ".join(one.frame["reasons"])
    assert "no one has logged in with it before" in reasons  # read across users
    plan = cluster.plan(files, profile="auto", partitions=6)
    assert plan.profile == "login"
    cluster.score(client, plan, model, out=str(tmp_path / "out"))
    assert_same_scores(read_parts(tmp_path / "out"), one.frame)


def test_a_sample_is_the_same_for_a_seed_and_says_what_it_is(client, tmp_path):
    files = write_dataset(machines_frame(machines=8, rows=500), tmp_path / "readings")
    plan = cluster.plan(files, profile="sensor", partitions=4)
    first, about = cluster.sample(client, plan, rows=1_000, seed=7)
    again, _ = cluster.sample(client, plan, rows=1_000, seed=7)
    other, _ = cluster.sample(client, plan, rows=1_000, seed=8)
    assert first.index.tolist() == again.index.tolist()
    assert first.index.tolist() != other.index.tolist()
    assert about["of"] == 4_000 and about["rows"] == len(first) and about["seed"] == 7
    assert 0 < len(first) < 4_000 and "stretches" in about["drawn"]
    everything, about = cluster.sample(client, plan, rows=10_000)
    assert len(everything) == 4_000 and about["drawn"] == "every row"
    assert everything.index.tolist() == scoring.read_files(files).index.tolist()


def vigil(*args, url: str, tmp_path: Path, scheduler: str, wait: bool = True):
    env = {**os.environ, "DATABASE_URL": url, "DASK_SCHEDULER": scheduler,
           "JOURNAL_DIR": str(tmp_path / "fallback"),
           "ALERT_OUTBOX_DIR": str(tmp_path / "outbox")}
    command = [sys.executable, "-m", "app", *map(str, args)]
    if not wait:
        return subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)


def stored(url: str, run_id: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    engine = db.make_engine(url)
    with engine.connect() as conn:
        anomalies = pd.DataFrame(conn.execute(
            select(Anomaly.row_number, Anomaly.entity, Anomaly.anomaly_score, Anomaly.severity,
                   Anomaly.reasons, Incident.number)
            .join(Incident, Anomaly.incident_id == Incident.id)
            .where(Anomaly.run_id == run_id).order_by(Anomaly.row_number)).all())
        incidents = pd.DataFrame(conn.execute(
            select(Incident.number, Incident.entity, Incident.row_count, Incident.peak_score,
                   Incident.summary)
            .where(Incident.run_id == run_id).order_by(Incident.number)).all())
    engine.dispose()
    return anomalies, incidents


def test_a_saved_dataset_run_equals_the_one_process_run(tmp_path, postgres_url, dask_cluster):
    """`vigil score DIR --engine dask --model M --save` on PostgreSQL stores what
    `vigil score DIR --model M --save` stores: the same run (the one-process save finds
    it stored), the same flagged rows and incidents, numbered alike."""
    engine = db.make_engine(postgres_url)
    _empty_tables(engine)
    engine.dispose()
    frame = machines_frame()
    scoring_base = tmp_path / "base.csv"
    frame.iloc[:1200].to_csv(scoring_base, index=False)
    write_dataset(frame.iloc[1200:], tmp_path / "readings")
    local = f"sqlite:///{tmp_path / 'one.db'}"
    upgraded(local)  # the PostgreSQL database is the session's, migrated
    # The same model in both databases: trained once, its row copied.
    trained = vigil("train", scoring_base, "--name", "lines", url=postgres_url,
                    tmp_path=tmp_path, scheduler="")
    assert trained.returncode == 0, trained.stderr
    copy_models(postgres_url, local)

    on_cluster = vigil("score", tmp_path / "readings", "--engine", "dask", "--model", "lines",
                       "--save", url=postgres_url, tmp_path=tmp_path,
                       scheduler=dask_cluster.address)
    assert on_cluster.returncode == 0, on_cluster.stderr
    assert f"dask: {dask_cluster.address}" in on_cluster.stderr
    assert "partitions done" in on_cluster.stderr and "rows/s" in on_cluster.stderr
    assert "Stored as run 1." in on_cluster.stderr
    again = vigil("score", tmp_path / "readings", "--model", "lines", "--save",
                  url=postgres_url, tmp_path=tmp_path, scheduler="")
    assert "Already stored as run 1: nothing was added." in again.stderr
    alone = vigil("score", tmp_path / "readings", "--model", "lines", "--save", url=local,
                  tmp_path=tmp_path, scheduler="")
    assert "Stored as run 1." in alone.stderr, alone.stderr

    cluster_rows, cluster_incidents = stored(postgres_url, 1)
    local_rows, local_incidents = stored(local, 1)
    assert len(cluster_rows) > 0
    pd.testing.assert_frame_equal(cluster_rows, local_rows)
    pd.testing.assert_frame_equal(cluster_incidents, local_incidents)
    engine = db.make_engine(postgres_url)
    with engine.connect() as conn:
        run = conn.execute(select(DetectionRun)).one()
        assert run.status == "complete" and run.total_rows == len(frame) - 1200
        assert run.anomaly_count == len(local_rows)
    engine.dispose()


def upgraded(url: str) -> None:
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()


def copy_models(source: str, target: str) -> None:
    from storage.schema import ModelVersion

    read, write = db.make_engine(source), db.make_engine(target)
    with read.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(ModelVersion.__table__))]
    with write.begin() as conn:
        conn.execute(ModelVersion.__table__.insert(), rows)
    read.dispose()
    write.dispose()


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(tmp_path, postgres_url):
    """kill -9 of a worker once some partitions are stored: the cluster scores its work
    again on the other worker, and every partition is stored once."""
    engine = db.make_engine(postgres_url)
    _empty_tables(engine)
    own = DaskCluster(workers=2)
    try:
        frame = machines_frame(machines=24, rows=2_500, seed=3)
        frame.iloc[:12_000].to_csv(tmp_path / "base.csv", index=False)
        write_dataset(frame.iloc[12_000:], tmp_path / "readings", files=4)
        trained = vigil("train", tmp_path / "base.csv", "--name", "lines", url=postgres_url,
                        tmp_path=tmp_path, scheduler="")
        assert trained.returncode == 0, trained.stderr
        running = vigil("score", tmp_path / "readings", "--engine", "dask", "--model", "lines",
                        "--save", "--partitions", "24", url=postgres_url, tmp_path=tmp_path,
                        scheduler=own.address, wait=False)
        said = wait_for_a_stored_partition(running)
        own.workers[0].send_signal(signal.SIGKILL)
        out, err = running.communicate(timeout=300)
        err = said + err
        assert running.returncode == 0, err
        assert "1/24 partitions done" in said  # killed with 23 partitions to go
        with engine.connect() as conn:
            parts = conn.scalars(select(RunPartition.partition)
                                 .order_by(RunPartition.partition)).all()
            rows = conn.scalars(select(Anomaly.row_number)).all()
            run = conn.execute(select(DetectionRun)).one()
        assert parts == list(range(24))
        assert len(rows) == len(set(rows)) == run.anomaly_count > 0
        alone = vigil("score", tmp_path / "readings", "--model", "lines", "--out",
                      tmp_path / "alone.csv", url=postgres_url, tmp_path=tmp_path,
                      scheduler="")
        assert alone.returncode == 0, alone.stderr
        flagged = pd.read_csv(tmp_path / "alone.csv")["is_anomaly"].to_numpy()
        assert sorted(rows) == (np.flatnonzero(flagged) + 1).tolist()
    finally:
        own.stop()
        engine.dispose()


def wait_for_a_stored_partition(running: subprocess.Popen) -> str:
    """What the run said up to the line telling its first partition is done (and so
    stored): read as it comes, no polling."""
    said = []
    for line in running.stderr:
        said.append(line)
        if "partitions done" in line:
            return "".join(said)
    raise AssertionError(f"the run ended before a partition was done: {''.join(said)}")


def test_a_saved_login_dataset_joins_a_campaign_across_partitions(tmp_path, postgres_url,
                                                                  dask_cluster):
    """The logins sample's spray hits users dealt to several partitions: the cluster run
    stores it as one campaign incident, as a one-process save does."""
    engine = db.make_engine(postgres_url)
    _empty_tables(engine)
    engine.dispose()
    logins = pd.read_csv(sample_path("logins.csv"))
    cut = len(logins) // 4
    logins.iloc[:cut].to_csv(tmp_path / "base.csv", index=False)
    write_dataset(logins.iloc[cut:], tmp_path / "logins")
    local = f"sqlite:///{tmp_path / 'one.db'}"
    upgraded(local)
    trained = vigil("train", tmp_path / "base.csv", "--name", "staff", url=postgres_url,
                    tmp_path=tmp_path, scheduler="")
    assert trained.returncode == 0, trained.stderr
    copy_models(postgres_url, local)
    on_cluster = vigil("score", tmp_path / "logins", "--engine", "dask", "--model", "staff",
                       "--save", "--partitions", "6", url=postgres_url, tmp_path=tmp_path,
                       scheduler=dask_cluster.address)
    assert on_cluster.returncode == 0, on_cluster.stderr
    alone = vigil("score", tmp_path / "logins", "--model", "staff", "--save", url=local,
                  tmp_path=tmp_path, scheduler="")
    assert alone.returncode == 0, alone.stderr

    def grouped(url):
        rows, found = stored(url, 1)
        # Numbers aside (a campaign's place in the order may differ): each flagged row's
        # incident as what it is.
        what = found.set_index("number")[["entity", "row_count", "peak_score", "summary"]]
        return rows.drop(columns="number").assign(
            incident=[tuple(what.loc[n]) for n in rows["number"]])

    cluster_rows, local_rows = grouped(postgres_url), grouped(local)
    pd.testing.assert_frame_equal(cluster_rows, local_rows)
    campaigns = {i for i in cluster_rows["incident"] if i[3].startswith("campaign from ")}
    assert len(campaigns) >= 1
    users = cluster_rows[cluster_rows["incident"].isin(campaigns)]["entity"].nunique()
    assert users >= 6  # more users than partitions: the campaign crossed them


def test_vigil_train_on_a_cluster_keeps_how_its_sample_was_drawn(tmp_path, dask_cluster):
    """`vigil train DATASET --engine dask`: a model of a sample drawn across partitions,
    the same for a seed, and its metadata says so."""
    write_dataset(machines_frame(machines=8, rows=400), tmp_path / "history")
    url = f"sqlite:///{tmp_path / 'v.db'}"
    trained = [vigil("train", tmp_path / "history", "--engine", "dask", "--seed", "5",
                     "--name", f"lines{i}", url=url, tmp_path=tmp_path,
                     scheduler=dask_cluster.address) for i in range(2)]
    for done in trained:
        assert done.returncode == 0, done.stderr
        assert "sample: 3,200 of 3,200 rows (every row, seed 5)" in done.stdout
    engine = db.make_engine(url)
    metadata = [registry.load_model(engine, version=m["version"]).metadata
                for m in registry.list_models(engine)]
    engine.dispose()
    samples = [m["sample"] for m in metadata]
    assert samples[0] == samples[1]
    assert samples[0]["seed"] == 5 and samples[0]["of"] == 3_200
    assert metadata[0]["training_hash"] == metadata[1]["training_hash"]
