"""The fallback journal: runs that could not be stored wait here as files.

One folder per run under the journal directory: ``run.json`` (the run's metadata),
``anomalies.csv`` (the flagged rows, the original row as JSON text) and, when present,
``chart.parquet`` and ``inputs.parquet`` (the file's rows). A folder is written under a temporary name and renamed when
complete, so a crash never leaves half a journal entry behind. An entry the database
refuses is set aside under ``rejected/`` with a ``reason.txt``, so it never blocks the
entries after it.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import pandas as pd

from storage.errors import JournalError
from storage.runs import RunToSave

META = "run.json"
ROWS = "anomalies.csv"
CHART = "chart.parquet"
INPUTS = "inputs.parquet"
REJECTED = "rejected"
REASON = "reason.txt"


def write(folder: Path, run: RunToSave) -> Path:
    """Journal ``run``; returns its entry's folder (the same one for the same run).

    Raises
    ------
    JournalError
        The folder cannot be created or written (the run is then stored nowhere).
    """
    try:
        return _write(folder, run)
    except OSError as exc:
        raise JournalError(f"the journal folder {folder} cannot be written "
                           f"({exc.strerror or exc}): set JOURNAL_DIR to a writable "
                           "folder") from None


def _write(folder: Path, run: RunToSave) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    entry = folder / run.run_key
    if entry.exists():
        return entry
    tmp = folder / f".{run.run_key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    meta = {f.name: getattr(run, f.name) for f in fields(run)
            if f.name not in ("anomalies", "chart_data", "inputs")}
    (tmp / META).write_text(json.dumps(meta, indent=2, default=str))
    rows = run.anomalies.copy()
    rows["data"] = [json.dumps(d, default=str) for d in rows["data"]]
    rows["event_time"] = pd.to_datetime(rows["event_time"], utc=True)
    rows.to_csv(tmp / ROWS, index=False)
    if run.chart_data is not None:
        (tmp / CHART).write_bytes(run.chart_data)
    if run.inputs is not None:
        (tmp / INPUTS).write_bytes(run.inputs)
    tmp.rename(entry)
    return entry


@contextmanager
def lock(folder: Path) -> Iterator[None]:
    """Hold the journal while replaying: a second replay waits, then finds the entries
    the first one stored gone."""
    if not folder.is_dir():
        yield
        return
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def entries(folder: Path) -> list[Path]:
    """Complete journal entries, oldest first."""
    if not folder.exists():
        return []
    found = [p for p in folder.iterdir()
             if p.is_dir() and not p.name.startswith(".") and p.name != REJECTED]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def read(entry: Path) -> RunToSave:
    meta = json.loads((entry / META).read_text())
    rows = pd.read_csv(entry / ROWS, dtype={"entity": "string", "data": "string",
                                            "reasons": "string", "severity": "string"},
                       keep_default_na=False, na_values={"event_time": [""]})
    anomalies = pd.DataFrame({
        "row_number": rows["row_number"].astype("int64"),
        "event_time": pd.to_datetime(rows["event_time"], utc=True, format="ISO8601")
        .astype(object).where(rows["event_time"].notna(), None),
        "entity": rows["entity"].astype(object).where(rows["entity"] != "", None),
        "anomaly_score": rows["anomaly_score"].astype("float64"),
        "severity": rows["severity"].astype(object),
        "reasons": rows["reasons"].astype(object),
        "data": [json.loads(d) for d in rows["data"]],
    })
    chart, inputs = entry / CHART, entry / INPUTS
    return RunToSave(**meta, anomalies=anomalies,
                     chart_data=chart.read_bytes() if chart.exists() else None,
                     inputs=inputs.read_bytes() if inputs.exists() else None)


def remove(entry: Path) -> None:
    shutil.rmtree(entry)


def set_aside(entry: Path, reason: str) -> Path:
    """Move an entry the database refuses to ``rejected/`` with the reason beside it."""
    target = entry.parent / REJECTED / entry.name
    target.parent.mkdir(exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    entry.rename(target)
    (target / REASON).write_text(reason + "\n")
    return target

