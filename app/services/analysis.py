"""Reading and scoring files and uploads (the Analyze page, `vigil score`, `POST /v1/score`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from app import scoring
from app.chart_data import (
    histogram,
    merge_series,
    read_series,
    score_counts,
    score_histogram,
    series_bins,
    series_frame,
    to_parquet,
)
from app.scoring import read_dataset
from app.services.models import load_model
from app.vigil import Vigil
from detection import Dataset, Model, ScoredFrame
from storage import known, registry
from storage.errors import ModelNotFoundError
from storage.runs import RunToSave, drift_fields

ACTIVE = "active"  # `--model active`: the profile's active registered model
FIT = "fit"  # no registered model: fit one on the rows themselves, as `vigil score FILE`


def resolve_model(vigil: Vigil, version: str, *, profile: str) -> Model:
    """A registered model by version or name (its newest version); ``"active"`` is the
    profile's active one."""
    vigil.require("viewer")
    if version == ACTIVE:
        version = registry.active_version(vigil.engine, profile=profile)
        if version is None:
            raise ModelNotFoundError(f"no active {profile} model: train one, or activate a "
                                     "registered version")
    else:
        version = registry.version_for(vigil.engine, version)
    return load_model(vigil, version)


def analyze(vigil: Vigil, dataset: Dataset, *, model_version: str | None = None,
            detector: str = "isolation_forest", **params) -> ScoredFrame:
    """Score a dataset: with a registered model, or fitted on the dataset itself.

    ``model_version="active"`` takes the active model of the dataset's profile.
    """
    vigil.require("analyst")
    model = resolve_model(vigil, model_version, profile=dataset.profile) \
        if model_version else None
    return scoring.analyze(with_known(vigil, dataset), model=model, detector=detector,
                           **params)


def with_known(vigil: Vigil, dataset: Dataset) -> Dataset:
    """A login dataset with the values analysts marked as normal for its users (rows
    reviewed as false positives, table known_values): scored as their known history."""
    vigil.require("viewer")
    if dataset.profile != "login":
        return dataset
    users = dataset.column("user").astype("string").str.strip().dropna().unique()
    found = known.for_users(vigil.engine, users)
    return replace(dataset, known=found.rename(columns={"user_name": "user"}))


def every_known(vigil: Vigil) -> pd.DataFrame:
    """Every value analysts marked as normal for its user (columns user, key, value): a
    dataset scored on a cluster hands each partition its users' (``with_known``)."""
    vigil.require("viewer")
    return known.every_known(vigil.engine).rename(columns={"user_name": "user"})


def prepare_run(vigil: Vigil, result: ScoredFrame, *, source_name: str,
                file_sha256: str) -> RunToSave:
    """What a save stores of a scored file: flagged rows (grouped into incidents when
    stored), chart bins, score histogram, and a sensor or generic file's rows (to train
    models from runs)."""
    return RunToSave.from_result(
        result, source_name=source_name, file_sha256=file_sha256,
        chart_data=series_bins(result), score_histogram=score_histogram(result),
        incident_gap_minutes=vigil.settings.incident_gap_minutes(result.profile),
        keep_inputs=True)


@dataclass(frozen=True)
class Preview:
    """How a file was read, for the page to show before scoring (no rows)."""

    profile: str
    rows: int
    columns: list[str]
    mapping: dict[str, str | None]
    warnings: list[str]
    approximate: bool = False  # a big file: rows counted as lines, its first piece checked


def preview(dataset: Dataset) -> Preview:
    return Preview(dataset.profile, len(dataset), [str(c) for c in dataset.frame.columns],
                   dataset.mapping.as_dict(), list(dataset.warnings))


def _big(data: bytes, first: Dataset) -> int:
    """The rows (about) of an upload read and scored in pieces; 0 for one read whole."""
    rows = scoring.estimated_rows(data)
    return rows if scoring.fits_in_pieces(rows, first.profile) else 0


def inspect_upload(data: bytes, *, profile: str = "auto",
                   columns: dict[str, str | None] | None = None) -> Preview:
    """How an upload reads: a big sensor or generic file from its first piece (its later
    rows are checked while scoring), any other whole."""
    first = scoring.first_piece(data, profile=profile, columns=columns)
    rows = _big(data, first)
    if not rows:
        return preview(read_dataset(data, profile=profile, columns=columns))
    return replace(preview(first), rows=rows, approximate=True)


@dataclass(frozen=True)
class Analysis:
    """A scored file as the dashboard keeps it: what it shows and what Save stores,
    without the file's rows, so a 10M-row upload leaves megabytes behind, not gigabytes.
    """

    run: RunToSave  # flagged rows, chart bins and histogram, ready for :func:`store`
    top: pd.DataFrame  # the worst rows, with the file's columns and the score columns
    time_based: bool

    @property
    def series(self) -> pd.DataFrame:
        return read_series(self.run.chart_data)


def summarize(vigil: Vigil, result: ScoredFrame, *, source_name: str, file_sha256: str,
              top: int = 20) -> Analysis:
    return Analysis(prepare_run(vigil, result, source_name=source_name,
                                file_sha256=file_sha256),
                    top=result.anomalies.nlargest(top, "anomaly_score"),
                    time_based=result.time is not None)


MAX_WARNINGS = 20  # a big file's pieces each warn of their own rows


def analyze_upload(vigil: Vigil, data: bytes, *, source_name: str, file_sha256: str,
                   profile: str = "auto", columns: dict[str, str | None] | None = None,
                   model_version: str | None = None, detector: str = "isolation_forest",
                   top: int = 20, **params) -> Analysis:
    """Score an upload and summarize it for the page. A big sensor or generic file is
    read and scored in pieces, in memory bounded by a piece whatever its size; fitted on
    itself, its model learns from :data:`app.scoring.FIT_ROWS` of its rows."""
    vigil.require("analyst")
    first = scoring.first_piece(data, profile=profile, columns=columns)
    rows = _big(data, first)
    if not rows:
        dataset = read_dataset(data, profile=profile, columns=columns)
        result = analyze(vigil, dataset, model_version=model_version, detector=detector,
                         **params)
        return summarize(vigil, result, source_name=source_name, file_sha256=file_sha256,
                         top=top)
    notes = []
    if model_version:
        model = resolve_model(vigil, model_version, profile=first.profile)
    else:
        model = scoring.fit_on_stretches(data, rows=rows, profile=first.profile,
                                         columns=columns, detector=detector, **params)
        notes.append(scoring.stretches_note(rows))
    parts, series, counts, tops = [], [], 0, []
    # Drift from a baseline: a model fitted on this file has none to measure against.
    notes_of_pieces = scoring.PieceNotes(judged=bool(model_version))
    for result in scoring.scored_pieces(data, model, columns=columns):
        if not model_version:
            result.model_version = None  # the model exists only for this file
        parts.append(RunToSave.from_result(result, source_name=source_name,
                                           file_sha256=file_sha256))
        series.append(series_frame(result))
        counts = counts + score_counts(result)
        tops.append(result.anomalies.nlargest(top, "anomaly_score"))
        notes_of_pieces.add(result)
    warnings, drift = notes_of_pieces.warnings, notes_of_pieces.drift
    if len(warnings) > MAX_WARNINGS:
        warnings = [*warnings[:MAX_WARNINGS], f"… and {len(warnings) - MAX_WARNINGS:,} "
                    "more warnings about later rows of the file."]
    # Pieces with no flagged row are left out: their empty columns have no type to join.
    flagged = [p.anomalies for p in parts if len(p.anomalies)] or [parts[0].anomalies]
    run = replace(
        parts[0], anomalies=pd.concat(flagged, ignore_index=True),
        total_rows=sum(p.total_rows for p in parts), warnings=notes + warnings,
        chart_data=to_parquet(merge_series(series)), score_histogram=histogram(counts),
        incident_gap_minutes=vigil.settings.incident_gap_minutes(parts[0].profile),
        **drift_fields(drift))
    return Analysis(run, top=pd.concat(tops).nlargest(top, "anomaly_score"),
                    time_based=result.time is not None)


def score_rows(vigil: Vigil, data: bytes, *, profile: str = "auto",
               model_version: str = ACTIVE) -> ScoredFrame:
    """Score CSV rows with a registered model: what `vigil score --model` does; with
    ``model_version="fit"``, fit on the rows themselves, as `vigil score` without one."""
    vigil.require("analyst")
    dataset = read_dataset(data, profile=profile)
    if model_version == FIT:
        return scoring.analyze(with_known(vigil, dataset))
    model = resolve_model(vigil, model_version, profile=dataset.profile)
    model.check_profile(dataset.profile)
    return scoring.analyze(with_known(vigil, dataset), model=model)
