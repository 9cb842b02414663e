"""Use cases shared by the CLI and the dashboard: read, analyze, save, train, review.

No streamlit here: pages and the CLI both call these functions, so there is one path
for each thing Vigil does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from app.chart_data import score_histogram, series_bins
from app.settings import Settings, get_settings
from detection import Dataset, ScoredFrame, fit, fit_score, prepare, read_csv
from detection.reading import Source
from storage import anomalies, db, journal, registry, runs
from storage.anomalies import AnomalyFilter
from storage.errors import ModelNotFoundError
from storage.runs import RunToSave, SaveOutcome

ACTIVE = "active"  # `--model active`: the profile's active registered model


# -- database ------------------------------------------------------------------
@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    engine = db.make_engine(url)
    if db.is_embedded(engine):
        db.upgrade(engine)  # the embedded file is ours alone: keep it current
    return engine


def engine(settings: Settings | None = None) -> Engine:
    """The database of ``DATABASE_URL``; SQLite is upgraded to the newest schema."""
    return _engine_for((settings or get_settings()).database_url)


def upgrade_database(settings: Settings | None = None) -> None:
    db.upgrade(db.make_engine((settings or get_settings()).database_url))


def database_error(exc: DBAPIError) -> str:
    """A database failure in one line, without the SQL or any password."""
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    return f"{type(exc.orig).__name__ if exc.orig else 'error'}: {detail}"


# -- reading and scoring -----------------------------------------------------------
def file_sha256(source: Source) -> str:
    data = Path(source).read_bytes() if isinstance(source, str | Path) else bytes(source)
    return hashlib.sha256(data).hexdigest()


def read_dataset(source: Source, *, profile: str = "auto",
                 columns: dict[str, str | None] | None = None) -> Dataset:
    """Read and validate a CSV (path, bytes or binary file)."""
    return prepare(read_csv(source), profile=profile, columns=columns)


def analyze(dataset: Dataset, *, model_version: str | None = None,
            detector: str = "isolation_forest", settings: Settings | None = None,
            **params) -> ScoredFrame:
    """Score a dataset: with a registered model, or fitted on the dataset itself.

    ``model_version="active"`` takes the active model of the dataset's profile.
    """
    if model_version == ACTIVE:
        model_version = registry.active_version(engine(settings), profile=dataset.profile)
        if model_version is None:
            raise ModelNotFoundError(f"no active {dataset.profile} model: train one, or "
                                     "activate a registered version")
    if model_version:
        return load_model(model_version, settings=settings).score(dataset)
    return fit_score(dataset, detector=detector, **params)[1]


# -- saving ------------------------------------------------------------------------
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


def save(result: ScoredFrame, *, source_name: str, file_sha256: str,
         settings: Settings | None = None) -> SaveReport:
    """Store a scored run once. If the database fails, journal it so nothing is lost."""
    settings = settings or get_settings()
    run = RunToSave.from_result(result, source_name=source_name, file_sha256=file_sha256,
                                chart_data=series_bins(result),
                                score_histogram=score_histogram(result))
    try:
        outcome = runs.save_run(engine(settings), run=run)
    except DBAPIError as exc:
        entry = journal.write(settings.journal_dir, run)
        return SaveReport(None, False, entry, (
            f"The database could not store the run ({database_error(exc)}). Nothing was "
            f"lost: it waits in {entry} and `vigil db replay` stores it once the database "
            "is back."))
    return _report(outcome)


def _report(outcome: SaveOutcome) -> SaveReport:
    if outcome.created:
        return SaveReport(outcome.run_id, True, message=f"Stored as run {outcome.run_id}.")
    return SaveReport(outcome.run_id, False,
                      message=f"Already stored as run {outcome.run_id}: nothing was added.")


def replay(settings: Settings | None = None) -> list[SaveReport]:
    """Store journaled runs; an entry is removed only after its run is committed."""
    settings = settings or get_settings()
    reports = []
    for entry in journal.entries(settings.journal_dir):
        outcome = runs.save_run(engine(settings), run=journal.read(entry))
        journal.remove(entry)
        reports.append(_report(outcome))
    return reports


def list_runs(*, limit: int = 100, settings: Settings | None = None):
    return runs.list_runs(engine(settings), limit=limit)


def get_run(run_id: int, *, settings: Settings | None = None):
    return runs.get_run(engine(settings), run_id=run_id)


def query_anomalies(filters: AnomalyFilter | None = None, *, limit: int | None = 1000,
                    offset: int = 0, with_data: bool = False,
                    settings: Settings | None = None):
    return anomalies.query_anomalies(engine(settings), filters=filters or AnomalyFilter(),
                                     limit=limit,
                                     offset=offset, with_data=with_data)


def review(anomaly_ids, status: str, *, reviewed_by: str | None = None,
           note: str | None = None, settings: Settings | None = None) -> int:
    return anomalies.set_review_status(engine(settings), anomaly_ids=anomaly_ids,
                                       status=status, reviewed_by=reviewed_by, note=note)


def overview(*, since: datetime, settings: Settings | None = None):
    return anomalies.overview(engine(settings), since=since)


# -- models ------------------------------------------------------------------------
def train(dataset: Dataset, *, detector: str = "isolation_forest",
          source_name: str | None = None, activate: bool = False,
          settings: Settings | None = None, **params) -> dict:
    """Fit a model on a baseline of normal history and register it."""
    model = fit(dataset, detector=detector, **params)
    return registry.save_model(engine(settings), model=model, source_name=source_name,
                               activate=activate)


def list_models(*, profile: str | None = None, settings: Settings | None = None) -> list[dict]:
    return registry.list_models(engine(settings), profile=profile)


def load_model(version: str, *, settings: Settings | None = None):
    return registry.load_model(engine(settings), version=version)


def activate_model(version: str, *, settings: Settings | None = None) -> dict:
    return registry.activate_model(engine(settings), version=version)


def rollback_model(profile: str, *, settings: Settings | None = None) -> dict:
    return registry.rollback_model(engine(settings), profile=profile)
