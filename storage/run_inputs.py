"""The rows of stored sensor and generic files, kept to train models from runs.

A run saved from a file keeps the file's rows as read (Parquet, zstd: a tenth to a
third of the CSV's size), the row numbers as the index. Training from runs reads them
back without the rows an analyst reviewed as ``confirmed``: a model of normal history
must not learn real incidents as normal.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, select

from detection.export import arrow_table
from storage.errors import StorageError
from storage.schema import Anomaly, DetectionRun, RunInput

PROFILES = ("sensor", "generic")  # login models learn users' histories: not from runs


def to_bytes(frame: pd.DataFrame) -> bytes:
    """A file's rows as Parquet, the row numbers as the index."""
    # Imported here: pyarrow's Parquet module costs 0.1 s of every command's start.
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(arrow_table(frame, index=True), sink, compression="zstd")
    return sink.getvalue().to_pybytes()


@dataclass(frozen=True)
class TrainingRows:
    """Rows of stored runs to train on: the files' rows one after the other, the column
    mapping they were scored with, and how many confirmed rows were left out."""

    frame: pd.DataFrame
    mapping: dict
    profile: str
    run_ids: list[int]
    left_out: int


def runs_with_rows(engine: Engine, *, limit: int = 200) -> list[dict]:
    """The newest runs that kept their rows: what a model can be trained from."""
    query = (select(DetectionRun.id, DetectionRun.created_at, DetectionRun.source_name,
                    DetectionRun.profile, RunInput.row_count)
             .join(RunInput, RunInput.run_id == DetectionRun.id)
             .order_by(DetectionRun.id.desc()).limit(limit))
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def training_rows(engine: Engine, *, run_ids: list[int] | None = None,
                  since: datetime | None = None, profile: str | None = None) -> TrainingRows:
    """The kept rows of ``run_ids``, or of every run of ``profile`` created at or after
    ``since``, without the rows reviewed as confirmed.

    Raises
    ------
    StorageError
        No such run, a run that kept no rows (a login file, a stream, a file scored in
        pieces, a run stored before rows were kept), runs of different profiles or
        columns, or nothing left to train on.
    """
    if run_ids is None and profile not in PROFILES:
        raise StorageError(f"training from every run since a date needs a profile: one of "
                           f"{', '.join(PROFILES)}")
    query = select(DetectionRun.id, DetectionRun.profile, DetectionRun.columns,
                   DetectionRun.mapping, RunInput.content).outerjoin(
        RunInput, RunInput.run_id == DetectionRun.id).order_by(DetectionRun.id)
    if run_ids is not None:
        query = query.where(DetectionRun.id.in_(run_ids))
    else:
        query = query.where(DetectionRun.created_at >= since, DetectionRun.profile == profile,
                            RunInput.run_id.is_not(None))
    with engine.connect() as conn:
        runs = conn.execute(query).all()
        confirmed = conn.execute(
            select(Anomaly.run_id, Anomaly.row_number)
            .where(Anomaly.run_id.in_([r.id for r in runs]),
                   Anomaly.review_status == "confirmed")).all()
    _check(runs, run_ids, since, profile)
    left_out: dict[int, set[int]] = {}
    for run_id, row in confirmed:
        left_out.setdefault(run_id, set()).add(row)
    frames = []
    for run in runs:
        frame = pd.read_parquet(io.BytesIO(run.content))
        frames.append(frame[~frame.index.isin(left_out.get(run.id, ()))])
    frame = pd.concat(frames, ignore_index=True)
    if frame.empty:
        raise StorageError("every kept row of these runs was reviewed as confirmed: there is "
                           "no normal history left to train on")
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return TrainingRows(frame=frame, mapping=dict(runs[0].mapping or {}),
                        profile=runs[0].profile, run_ids=[r.id for r in runs],
                        left_out=sum(len(rows) for rows in left_out.values()))


def _check(runs, run_ids, since, profile) -> None:
    if run_ids is not None:
        missing = sorted(set(run_ids) - {r.id for r in runs})
        if missing:
            raise StorageError(f"no run {missing[0]} is stored")
    elif not runs:
        raise StorageError(f"no {profile} run since {since:%Y-%m-%d %H:%M} kept its rows: "
                           "runs keep them when a sensor or generic file is saved")
    for run in runs:
        if run.content is None:
            raise StorageError(
                f"run {run.id} kept no rows to train on: runs keep them when a sensor or "
                f"generic file of up to a million rows is saved (this one is {run.profile}"
                ", or was streamed, or was stored before rows were kept)")
    first = runs[0]
    for run in runs[1:]:
        if run.profile != first.profile or run.columns != first.columns:
            raise StorageError(
                f"run {run.id} is not like run {first.id} ({run.profile} with columns "
                f"{', '.join(run.columns or [])}; run {first.id}: {first.profile} with "
                f"{', '.join(first.columns or [])}): train from runs of one source")
