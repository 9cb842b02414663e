"""Scoring and training on a dataset with Dask (`--engine dask`): past one process.

A dataset (files, :func:`app.scoring.dataset_files`) is read a file per task and its rows
dealt into partitions by entity (the sensor's machine, the login's user; a generic file's
rows in blocks), so each partition holds every row of its entities: rolling windows,
per-user history and incidents see all they see in one process. What a user's score
reads of other users (a value no one used before, failures from one address across
users) is read from every file in the first pass (``LoginFeatures.population``) and
handed to each partition. Each partition is scored by the registered model in a task of
its own, and writes its rows (``--out``: one Parquet file each) and its flagged rows
(``--save``: storage.partitions, once per partition however often a task is retried);
scores and flags equal the one-process result on the same data and model.

The cluster: ``DASK_SCHEDULER`` (``tcp://scheduler:8786``), else a ``LocalCluster`` of
worker processes on this machine.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from app.chart_data import histogram, score_counts
from app.scoring import combined_sha256, file_sha256, first_piece
from detection import Dataset, Model, ScoredFrame, fit, prepare
from detection.envelope import Drift
from detection.reading import read_table
from detection.threads import THREADS_SETTING, available_cores

# Partitions per worker: enough that a slow one does not hold up the run, few enough
# that each holds many entities.
PARTITIONS_PER_WORKER = 4
PARTITION_ROWS = 500_000
CSV_ROW_BYTES = 40  # a sensor reading's line, about, to size a CSV dataset's partitions
LOCAL_WORKERS = 2
BLOCK_ROWS = 100_000  # rows of a file without entities dealt to a partition at a time
# Training on a dataset of more rows than this fits on a sample of about this many.
SAMPLE_ROWS = 1_000_000
STRETCH = 2_000  # readings of one entity a sensor or generic sample takes together
RETRIES = 3  # a task whose worker died is run again, this many times at most


@contextmanager
def connect(scheduler: str | None = None, *, workers: int = LOCAL_WORKERS,
            memory_limit: str = "2GiB") -> Iterator:
    """A Dask client: of the scheduler at ``scheduler``, else of a local cluster of
    ``workers`` processes with one thread each."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler, timeout="20s") as client:
            yield client
        return
    # Detection works in as many threads as its process may use (detection.threads):
    # each worker takes its share of the cores (VIGIL_THREADS in the environment its
    # process starts with; as set, when set), or two workers on two cores would each
    # start two threads, four fighting for two cores. The workers' own log lines (a
    # heartbeat missed as the cluster closes) are noise: failures reach the command as
    # exceptions.
    share = os.environ.get(THREADS_SETTING) or str(max(1, available_cores() // workers))
    with _environ(THREADS_SETTING, share), \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                         memory_limit=memory_limit, dashboard_address="127.0.0.1:0",
                         silence_logs=logging.CRITICAL) as cluster, \
            Client(cluster) as client:
        yield client


@contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def dashboard(client) -> str | None:
    try:
        return client.dashboard_link
    except (KeyError, AttributeError):  # a scheduler without its dashboard
        return None


@dataclass(frozen=True)
class Plan:
    """How a dataset is read and dealt: the same for every task."""

    files: tuple[str, ...]
    profile: str
    columns: dict  # role -> column, as the first file was read
    key: str | None  # the column partitions are dealt by; None: in blocks of rows
    partitions: int


def partitions_for(files: list[Path], workers: int) -> int:
    """Partitions for a dataset: :data:`PARTITIONS_PER_WORKER` a worker, more for a big
    one, so that a partition holds about :data:`PARTITION_ROWS` rows (a partition's
    features take several times its rows' memory)."""
    rows = sum(_rows_about(f) for f in files)
    return max(workers * PARTITIONS_PER_WORKER, -(-rows // PARTITION_ROWS))


def _rows_about(path: Path) -> int:
    """A file's rows: a Parquet file's as its footer says, a CSV's from its size."""
    from detection.reading import is_parquet

    if is_parquet(path):
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return path.stat().st_size // CSV_ROW_BYTES


def plan(files: list[Path], *, profile: str, partitions: int) -> Plan:
    head = first_piece(files[0], profile=profile, rows=10_000)
    mapping = head.mapping
    key = mapping.user if head.profile == "login" else mapping.entity
    return Plan(tuple(str(f) for f in files), head.profile, mapping.as_dict(),
                key if head.profile != "generic" else None, partitions)


def _prepared(frame: pd.DataFrame, plan: Plan) -> Dataset:
    return prepare(frame, profile=plan.profile, columns=plan.columns)


def _deal(frame: pd.DataFrame, plan: Plan, number: int, users: pd.Series | None
          ) -> np.ndarray:
    """Each row's partition (``users``: a login file's, as the model knows them)."""
    if users is not None:
        values = users
    elif plan.key is not None:
        values = frame[plan.key].astype("string").fillna("(none)")
    else:
        return (np.arange(len(frame)) // BLOCK_ROWS + number) % plan.partitions
    hashed = pd.util.hash_array(values.to_numpy(dtype=object), categorize=True)
    return (hashed % np.uint64(plan.partitions)).astype("int64")


def _split(number: int, plan: Plan, model: Model | None) -> tuple:
    """One file read and dealt: (what it is, the rows other partitions read, its rows by
    partition)."""
    path = plan.files[number]
    frame = read_table(path)
    warnings = frame.attrs.pop("warnings", [])
    about = {"rows": len(frame), "last": int(frame.index[-1]) if len(frame) else 0,
             "sha256": file_sha256(path), "warnings": warnings}
    population = users = None
    if plan.profile == "login" and model is not None:
        dataset = _prepared(frame, plan)
        population = frame.iloc[model.featurizer.population(dataset)]
        users = model.featurizer.users(dataset)
    dealt = _deal(frame, plan, number, users)
    # One stable sort, then slices: not a pass over the rows for each partition.
    order = np.argsort(dealt, kind="stable")
    frame = frame.take(order)
    edges = np.searchsorted(dealt[order], np.arange(plan.partitions + 1))
    pieces = [frame.iloc[edges[p]:edges[p + 1]] for p in range(plan.partitions)]
    return about, population, pieces


def _take(split: tuple, i: int, j: int | None = None):
    return split[i] if j is None else split[i][j]


def _gather(pieces: list[pd.DataFrame], offsets: list[int]) -> pd.DataFrame:
    """A partition's rows from every file, numbered in the dataset, in dataset order."""
    moved = []
    for piece, offset in zip(pieces, offsets, strict=True):
        piece = piece.copy(deep=False)
        piece.index = piece.index + offset
        moved.append(piece)
    frame = pd.concat(moved) if len(moved) > 1 else moved[0]
    frame.index.name = "row"
    return frame


@dataclass
class Saving:
    """Where a partition's flagged rows go: the run begun in storage.partitions."""

    url: str
    run_id: int
    source_name: str
    file_sha256: str
    incident_gap_minutes: float | None
    complete: bool = False  # stored whole before: nothing to store


@dataclass
class Done:
    """What a partition reports back (its rows stay on the worker, or in ``--out``)."""

    partition: int
    rows: int
    flagged: int
    counts: np.ndarray
    warnings: list[str]
    drift: Drift | None
    seconds: float
    worker: str = ""  # the worker process that scored it, and its peak memory so far
    peak_mb: float = 0.0


def score_partition(partition: int, pieces: list[pd.DataFrame], offsets: list[int],
                    populations: list, plan: Plan, model: Model, known: pd.DataFrame | None,
                    out: str | None, saving: Saving | None) -> Done:
    """Score one partition and write what is asked of it."""
    started = time.perf_counter()
    frame = _gather(pieces, offsets)
    if frame.empty:
        _save(saving, partition, plan, None)
        return Done(partition, 0, 0, np.zeros(100, dtype="int64"), [], None, 0.0)
    result = score_frame(frame, plan, model, known,
                         [_gather([p], [o]) for p, o in zip(populations, offsets, strict=True)
                          if p is not None])
    if out is not None:
        _write_part(result, Path(out), partition)
    _save(saving, partition, plan, result)
    return Done(partition, len(result.frame), int(result.frame["is_anomaly"].sum()),
                score_counts(result), list(result.warnings), result.drift,
                time.perf_counter() - started, *_worker_memory())


def _worker_memory() -> tuple[str, float]:
    """This worker process (host:pid) and its peak resident memory so far, in MB."""
    import resource
    import socket

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return f"{socket.gethostname()}:{os.getpid()}", peak


def _save(saving: Saving | None, partition: int, plan: Plan,
          result: ScoredFrame | None) -> bool:
    """Store a partition's flagged rows once (storage.partitions); None: no rows."""
    if saving is None:
        return False
    from storage import partitions
    from storage.runs import RunToSave

    part = None if result is None else RunToSave.from_result(
        result, source_name=saving.source_name, file_sha256=saving.file_sha256,
        incident_gap_minutes=saving.incident_gap_minutes)
    return partitions.save(partitions.engine_for(saving.url), saving.run_id, partition,
                           plan.partitions, part)


def score_frame(frame: pd.DataFrame, plan: Plan, model: Model, known: pd.DataFrame | None,
                populations: list[pd.DataFrame]) -> ScoredFrame:
    """A partition's rows scored as the whole dataset scores them."""
    dataset = _prepared(frame, plan)
    if plan.profile != "login":
        return model.score(dataset)
    if known is not None and len(known):
        users = model.featurizer.users(dataset).unique()
        mine = known[known["user"].isin(users)]
        dataset = replace(dataset, known=mine if len(mine) else None)
    population = pd.concat(populations) if populations else frame.iloc[:0]
    others = _prepared(population, plan) if len(population) else None
    return model.score(dataset, model.featurizer.transform(dataset, others))


def _write_part(result: ScoredFrame, out: Path, partition: int) -> None:
    """The partition's rows with their score columns, as ``part-NNNNN.parquet`` (written
    aside, then renamed: a retried task replaces it whole)."""
    out.mkdir(parents=True, exist_ok=True)
    final = out / f"part-{partition:05d}.parquet"
    aside = out / f".{final.name}.{os.getpid()}"
    frame = result.frame.copy(deep=False)
    frame.columns = [str(c) for c in frame.columns]
    frame.reset_index().to_parquet(aside, index=False)
    aside.replace(final)


@dataclass
class Scored:
    """A dataset scored on the cluster."""

    rows: int = 0
    flagged: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(100, dtype="int64"))
    warnings: list[str] = field(default_factory=list)
    drifts: list[Drift] = field(default_factory=list)
    run_id: int | None = None
    already: bool = False  # the run was stored whole before
    peaks: dict[str, float] = field(default_factory=dict)  # worker -> peak memory, MB

    @property
    def drift(self) -> Drift | None:
        return Drift.combine(self.drifts) if self.drifts else None

    @property
    def score_histogram(self) -> list:
        """Rows per 1-point score bin over every partition (what the run stores)."""
        return histogram(self.counts)


Progress = Callable[[str], None]


def _first_pass(client, plan: Plan, model_f) -> tuple[list, list, list]:
    """Every file read and dealt on the workers: (their about, population and piece
    futures, per file)."""
    from distributed import wait

    splits = [client.submit(_split, i, plan, model_f, retries=RETRIES, pure=False)
              for i in range(len(plan.files))]
    abouts = [client.submit(_take, s, 0, retries=RETRIES) for s in splits]
    populations = [client.submit(_take, s, 1, retries=RETRIES) for s in splits]
    pieces = [[client.submit(_take, s, 2, p, retries=RETRIES) for s in splits]
              for p in range(plan.partitions)]
    wait(abouts)
    return client.gather(abouts), populations, pieces


def _offsets(abouts: list[dict]) -> list[int]:
    """Each file's first row number in the dataset, less one (rows continue)."""
    return [int(x) for x in np.concatenate([[0], np.cumsum([a["last"] for a in abouts])[:-1]])]


def dataset_hash(abouts: list[dict]) -> str:
    return combined_sha256([a["sha256"] for a in abouts])


def score(client, plan: Plan, model: Model, *, out: str | None = None,
          begin_saving: Callable[[str], Saving | None] | None = None,
          known: pd.DataFrame | None = None,
          progress: Progress = lambda line: None) -> Scored:
    """Score a dataset with ``model`` on the cluster; ``begin_saving(dataset hash)``
    begins the stored run (storage.partitions.begin) and says where partitions go."""
    from distributed import as_completed

    started = time.perf_counter()
    [model_f] = client.scatter([model], broadcast=True)
    known_f = client.scatter(known, broadcast=True) if known is not None else None
    abouts, populations, pieces = _first_pass(client, plan, model_f)
    offsets = _offsets(abouts)
    done = Scored(warnings=[w for a, f in zip(abouts, plan.files, strict=True)
                            for w in (f"{Path(f).name}: {x}" for x in a["warnings"])])
    saving = begin_saving(dataset_hash(abouts)) if begin_saving else None
    if saving is not None:
        done.run_id, done.already = saving.run_id, saving.complete
        if saving.complete:
            if out is None:
                return done
            saving = None
    total = sum(a["rows"] for a in abouts)
    progress(f"read {len(plan.files)} file(s), {total:,} rows, into {plan.partitions} "
             f"partitions ({time.perf_counter() - started:.1f} s)")
    tasks = [client.submit(score_partition, p, pieces[p], offsets, populations, plan,
                           model_f, known_f, out, saving, retries=RETRIES, pure=False)
             for p in range(plan.partitions)]
    for finished, count in zip(as_completed(tasks), range(1, len(tasks) + 1), strict=True):
        part: Done = finished.result()
        done.rows += part.rows
        done.flagged += part.flagged
        done.counts = done.counts + part.counts
        done.warnings += [w for w in part.warnings if w not in done.warnings]
        if part.drift is not None:
            done.drifts.append(part.drift)
        if part.worker:
            done.peaks[part.worker] = max(done.peaks.get(part.worker, 0.0), part.peak_mb)
        elapsed = time.perf_counter() - started
        progress(f"{count}/{plan.partitions} partitions done, {done.rows:,} rows scored, "
                 f"{done.rows / max(elapsed, 1e-9):,.0f} rows/s")
        finished.release()
    return done


# -- training on a dataset -----------------------------------------------------------
def _sample_partition(pieces: list[pd.DataFrame], offsets: list[int], plan: Plan,
                      share: float, seed: int) -> pd.DataFrame:
    """The rows of a partition the sample takes: whole users of a login dataset; of a
    sensor or generic one, stretches of :data:`STRETCH` readings of an entity in time
    order. Chosen by a seeded hash: the same seed, the same sample."""
    frame = _gather(pieces, offsets)
    if share >= 1 or frame.empty:
        return frame
    dataset = _prepared(frame, plan)
    if plan.profile == "login":
        unit = dataset.column("user").astype("string").fillna("(unknown)")
    else:
        entity = dataset.entity if dataset.entity is not None else \
            pd.Series("", index=frame.index, dtype="string")
        when = dataset.time if dataset.time is not None else \
            pd.Series(np.arange(len(frame)), index=frame.index)
        order = np.lexsort((np.arange(len(frame)), when.to_numpy(),
                            pd.factorize(entity)[0]))
        stretch = np.empty(len(frame), dtype="int64")
        stretch[order] = pd.Series(entity.to_numpy()[order]).groupby(
            entity.to_numpy()[order]).cumcount().to_numpy() // STRETCH
        unit = entity + "\x00" + pd.Series(stretch, index=frame.index).astype("string")
    hashed = pd.util.hash_array(unit.to_numpy(dtype=object), hash_key=f"vigil{seed:011d}",
                                categorize=True)
    keep = hashed < np.uint64(share * float(2 ** 64 - 1))
    return frame[keep]


def sample(client, plan: Plan, *, rows: int = SAMPLE_ROWS, seed: int = 0,
           progress: Progress = lambda line: None) -> tuple[pd.DataFrame, dict]:
    """The rows a model of the dataset learns from, and what the sample was: every row of
    a dataset of up to ``rows`` rows, else about ``rows`` drawn across partitions."""
    abouts, _, pieces = _first_pass(client, plan, None)
    offsets = _offsets(abouts)
    total = sum(a["rows"] for a in abouts)
    share = min(1.0, rows / max(total, 1))
    progress(f"read {len(plan.files)} file(s), {total:,} rows; training on "
             + ("all of them" if share >= 1 else f"a sample of about {share:.1%}"))
    parts = client.gather([client.submit(_sample_partition, pieces[p], offsets, plan, share,
                                         seed, retries=RETRIES, pure=False)
                           for p in range(plan.partitions)])
    frame = pd.concat([p for p in parts if len(p)] or parts[:1]).sort_index(kind="stable")
    about = {"rows": len(frame), "of": total, "seed": seed, "partitions": plan.partitions,
             "drawn": "every row" if share >= 1 else (
                 "whole users" if plan.profile == "login"
                 else f"stretches of {STRETCH:,} readings of an entity"),
             "sha256": dataset_hash(abouts)}
    return frame, about


def train(client, plan: Plan, *, seed: int = 0, rows: int = SAMPLE_ROWS,
          progress: Progress = lambda line: None, **params) -> Model:
    """A model fitted on a dataset (a sample of it beyond ``rows`` rows), saying so in
    its metadata (``sample``)."""
    frame, about = sample(client, plan, rows=rows, seed=seed, progress=progress)
    model = fit(_prepared(frame, plan), **params)
    model.metadata["sample"] = about
    return model
