"""Storing scored runs once, the fallback journal, and reading stored runs back."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from app.chart_data import (
    read_series,
)
from app.services.analysis import prepare_run
from app.vigil import Vigil
from detection import ScoredFrame
from storage import (
    journal,
    partitions,
    runs,
)
from storage.errors import DatabaseError, JournalError, RefusedValueError
from storage.runs import RunToSave, SaveOutcome


@dataclass(frozen=True)
class SaveReport:
    """What happened to a save, in words for the user."""

    run_id: int | None
    created: bool
    journal_entry: Path | None = None
    message: str = ""

    @property
    def stored(self) -> bool:
        return self.run_id is not None


def save(vigil: Vigil, result: ScoredFrame, *, source_name: str,
         file_sha256: str) -> SaveReport:
    """Store a scored run once. If the database fails, journal it so nothing is lost."""
    vigil.require("analyst")
    return store(vigil, prepare_run(vigil, result, source_name=source_name,
                                    file_sha256=file_sha256))


def store(vigil: Vigil, run: RunToSave) -> SaveReport:
    """Store a prepared run once (see :func:`save`)."""
    vigil.require("analyst")
    settings = vigil.settings
    try:
        outcome = runs.save_run(vigil.engine, run=run, actor=vigil.actor.name)
    except DatabaseError as exc:
        try:
            entry = journal.write(settings.journal_dir, run)
        except JournalError as journal_exc:
            return SaveReport(None, False, None, (
                f"The run was NOT stored: the database failed ({exc.detail}) and "
                f"{journal_exc}. Fix either one and save again."))
        return SaveReport(None, False, entry, (
            f"The database could not store the run ({exc.detail}). Nothing was "
            f"lost: it waits in {entry} and `vigil db replay` stores it once the database "
            "is back."))
    return _report(outcome)


def begin_partitioned(vigil: Vigil, head: ScoredFrame, *, source_name: str,
                      file_sha256: str) -> partitions.Begun:
    """Begin storing a dataset scored partition by partition (on a cluster): the run's
    row, from ``head`` (a few of its rows scored as the rest will be), status scoring."""
    vigil.require("analyst")
    header = RunToSave.from_result(
        head, source_name=source_name, file_sha256=file_sha256,
        incident_gap_minutes=vigil.settings.incident_gap_minutes(head.profile))
    return partitions.begin(vigil.engine, replace(
        header, anomalies=header.anomalies.iloc[:0], total_rows=0, warnings=[],
        drift_share=None, drift_feature=None))


def finish_partitioned(vigil: Vigil, run_id: int, *, total_rows: int, warnings: list[str],
                       score_histogram: list | None) -> SaveReport:
    """A run stored partition by partition made complete (see storage.partitions)."""
    actor = vigil.require("analyst")
    profile = get_run(vigil, run_id).profile
    partitions.finish(vigil.engine, run_id, total_rows=total_rows,
                      warnings=warnings, score_histogram=score_histogram, actor=actor.name,
                      incident_gap=pd.Timedelta(
                          minutes=vigil.settings.incident_gap_minutes(profile)))
    return SaveReport(run_id, True, message=f"Stored as run {run_id}.")


def _report(outcome: SaveOutcome) -> SaveReport:
    if outcome.created:
        return SaveReport(outcome.run_id, True, message=f"Stored as run {outcome.run_id}.")
    return SaveReport(outcome.run_id, False,
                      message=f"Already stored as run {outcome.run_id}: nothing was added.")


def replay(vigil: Vigil) -> list[SaveReport]:
    """Store journaled runs, oldest first; an entry is removed only after its run is
    committed. An entry the database refuses (or that cannot be read) is set aside under
    ``rejected/`` with its reason and the next one is stored: one bad entry never blocks
    the others. A failing connection stops the replay and keeps every entry."""
    vigil.require("admin")
    settings = vigil.settings
    folder = settings.journal_dir
    reports = []
    with journal.lock(folder):
        for entry in journal.entries(folder):
            if not entry.exists():
                continue  # stored by a replay that ran before this one took the lock
            try:
                outcome = runs.save_run(vigil.engine, run=journal.read(entry),
                                         actor=vigil.actor.name)
            except (RefusedValueError, OSError, ValueError, KeyError, TypeError) as exc:
                reason = str(exc) if isinstance(exc, RefusedValueError) \
                    else f"the journal entry cannot be read ({type(exc).__name__}: {exc})"
                target = journal.set_aside(entry, reason)
                reports.append(SaveReport(None, False, target,
                                          f"Set aside {target}: {reason}"))
                continue
            journal.remove(entry)
            reports.append(_report(outcome))
    return reports


def list_runs(vigil: Vigil, *, limit: int = 100, before_id: int | None = None):
    vigil.require("viewer")
    return runs.list_runs(vigil.engine, limit=limit, before_id=before_id)


def get_run(vigil: Vigil, run_id: int):
    vigil.require("viewer")
    return runs.get_run(vigil.engine, run_id=run_id)


def run_series(vigil: Vigil, run_ids: list[int]) -> pd.DataFrame:
    """The binned rows of the runs' files, for the metric charts."""
    parts = [read_series(run.chart_data).assign(run_id=run.id) for run in _runs(vigil, run_ids)]
    return pd.concat(parts, ignore_index=True) if parts else read_series(None)


def run_histogram(vigil: Vigil, run_ids: list[int]) -> pd.DataFrame:
    """Rows per 1-point score bin over the runs' files: columns ``bin``, ``rows``."""
    rows = [row for run in _runs(vigil, run_ids) for row in run.score_histogram or []]
    frame = pd.DataFrame(rows, columns=["bin", "rows"])
    return frame.groupby("bin", as_index=False)["rows"].sum()


def _runs(vigil: Vigil, run_ids: list[int]) -> list:
    """The stored runs among ``run_ids``, read in one unit of work."""
    vigil.require("viewer")
    with vigil.unit() as session:
        found = [runs.get_run(session, run_id=run_id) for run_id in run_ids]
    return [run for run in found if run is not None]
