"""Use cases shared by the CLI and the dashboard: read, analyze, save, train, review.

No streamlit here: pages and the CLI both call these functions, so there is one path
for each thing Vigil does.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from alerts import policy
from alerts.delivery import SmtpConfig, send_smtp, write_outbox
from alerts.errors import AlertError, DeliveryError
from alerts.message import (
    Digest,
    RunSummary,
    attachment_frame,
    build_message,
    probe_message,
    render_html,
    subject,
)
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
from app.scoring import file_sha256 as file_sha256  # for the pages
from app.scoring import read_dataset as read_dataset
from app.settings import Settings, get_settings
from detection import PROFILES, Dataset, Model, ScoredFrame, fit, prepare, read_csv
from detection.export import write_csv
from detection.stream import StreamScorer
from storage import (
    anomalies,
    db,
    incidents,
    journal,
    live,
    notifications,
    registry,
    runs,
    tokens,
)
from storage.anomalies import AnomalyFilter
from storage.errors import JournalError, ModelNotFoundError, RefusedValueError, StorageError
from storage.incidents import IncidentFilter
from storage.runs import RunToSave, SaveOutcome
from storage.schema import CLOSED_STATUSES
from storage.schema import REVIEW_STATUSES as REVIEW_STATUSES  # for the pages

ACTIVE = "active"  # `--model active`: the profile's active registered model


# -- database ------------------------------------------------------------------
_ENGINES_LOCK = threading.Lock()


def _engine_for(url: str) -> Engine:
    # One at a time: the API's threads may all ask at once, and Alembic's upgrade is not
    # thread-safe (its `context` is one global).
    with _ENGINES_LOCK:
        return _new_engine(url)


@lru_cache(maxsize=8)
def _new_engine(url: str) -> Engine:
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
def resolve_model(version: str, *, profile: str, settings: Settings | None = None) -> Model:
    """A registered model by version; ``"active"`` is the profile's active one."""
    if version == ACTIVE:
        version = registry.active_version(engine(settings), profile=profile)
        if version is None:
            raise ModelNotFoundError(f"no active {profile} model: train one, or activate a "
                                     "registered version")
    return load_model(version, settings=settings)


def analyze(dataset: Dataset, *, model_version: str | None = None,
            detector: str = "isolation_forest", settings: Settings | None = None,
            **params) -> ScoredFrame:
    """Score a dataset: with a registered model, or fitted on the dataset itself.

    ``model_version="active"`` takes the active model of the dataset's profile.
    """
    model = resolve_model(model_version, profile=dataset.profile, settings=settings) \
        if model_version else None
    return scoring.analyze(dataset, model=model, detector=detector, **params)


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


def prepare_run(result: ScoredFrame, *, source_name: str, file_sha256: str,
                settings: Settings | None = None) -> RunToSave:
    """What a save stores of a scored file: flagged rows (grouped into incidents when
    stored), chart bins, score histogram."""
    settings = settings or get_settings()
    return RunToSave.from_result(
        result, source_name=source_name, file_sha256=file_sha256,
        chart_data=series_bins(result), score_histogram=score_histogram(result),
        incident_gap_minutes=settings.incident_gap_minutes(result.profile))


def save(result: ScoredFrame, *, source_name: str, file_sha256: str,
         settings: Settings | None = None) -> SaveReport:
    """Store a scored run once. If the database fails, journal it so nothing is lost."""
    return store(prepare_run(result, source_name=source_name, file_sha256=file_sha256,
                             settings=settings), settings=settings)


def store(run: RunToSave, *, settings: Settings | None = None) -> SaveReport:
    """Store a prepared run once (see :func:`save`)."""
    settings = settings or get_settings()
    try:
        outcome = runs.save_run(engine(settings), run=run)
    except DBAPIError as exc:
        try:
            entry = journal.write(settings.journal_dir, run)
        except JournalError as journal_exc:
            return SaveReport(None, False, None, (
                f"The run was NOT stored: the database failed ({database_error(exc)}) and "
                f"{journal_exc}. Fix either one and save again."))
        return SaveReport(None, False, entry, (
            f"The database could not store the run ({database_error(exc)}). Nothing was "
            f"lost: it waits in {entry} and `vigil db replay` stores it once the database "
            "is back."))
    return _report(outcome)


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
    return rows if rows > scoring.WHOLE_ROWS and first.profile in ("sensor", "generic") else 0


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


def summarize(result: ScoredFrame, *, source_name: str, file_sha256: str,
              top: int = 20, settings: Settings | None = None) -> Analysis:
    return Analysis(prepare_run(result, source_name=source_name, file_sha256=file_sha256,
                                settings=settings),
                    top=result.anomalies.nlargest(top, "anomaly_score"),
                    time_based=result.time is not None)


MAX_WARNINGS = 20  # a big file's pieces each warn of their own rows


def analyze_upload(data: bytes, *, source_name: str, file_sha256: str, profile: str = "auto",
                   columns: dict[str, str | None] | None = None,
                   model_version: str | None = None, detector: str = "isolation_forest",
                   settings: Settings | None = None, top: int = 20, **params) -> Analysis:
    """Score an upload and summarize it for the page. A big sensor or generic file is
    read and scored in pieces, in memory bounded by a piece whatever its size; fitted on
    itself, its model learns from :data:`app.scoring.FIT_ROWS` of its rows."""
    first = scoring.first_piece(data, profile=profile, columns=columns)
    rows = _big(data, first)
    if not rows:
        dataset = read_dataset(data, profile=profile, columns=columns)
        result = analyze(dataset, model_version=model_version, detector=detector,
                         settings=settings, **params)
        return summarize(result, source_name=source_name, file_sha256=file_sha256,
                         top=top, settings=settings)
    notes = []
    if model_version:
        model = resolve_model(model_version, profile=first.profile, settings=settings)
    else:
        model = scoring.fit_on_stretches(data, rows=rows, profile=first.profile,
                                         columns=columns, detector=detector, **params)
        notes.append(f"This file has about {rows:,} rows: the model fitted on it learned "
                     f"from {scoring.FIT_ROWS:,} of them, in {scoring.FIT_STRETCHES} "
                     "stretches spread over the file, and then scored every row.")
    parts, series, counts, tops, warnings = [], [], 0, [], []
    for result in scoring.scored_pieces(data, model, columns=columns):
        if not model_version:
            result.model_version = None  # the model exists only for this file
        parts.append(RunToSave.from_result(result, source_name=source_name,
                                           file_sha256=file_sha256))
        series.append(series_frame(result))
        counts = counts + score_counts(result)
        tops.append(result.anomalies.nlargest(top, "anomaly_score"))
        warnings += [w for w in result.warnings if w not in warnings]
    if len(warnings) > MAX_WARNINGS:
        warnings = [*warnings[:MAX_WARNINGS], f"… and {len(warnings) - MAX_WARNINGS:,} "
                    "more warnings about later rows of the file."]
    settings = settings or get_settings()
    # Pieces with no flagged row are left out: their empty columns have no type to join.
    flagged = [p.anomalies for p in parts if len(p.anomalies)] or [parts[0].anomalies]
    run = replace(
        parts[0], anomalies=pd.concat(flagged, ignore_index=True),
        total_rows=sum(p.total_rows for p in parts), warnings=notes + warnings,
        chart_data=to_parquet(merge_series(series)), score_histogram=histogram(counts),
        incident_gap_minutes=settings.incident_gap_minutes(parts[0].profile))
    return Analysis(run, top=pd.concat(tops).nlargest(top, "anomaly_score"),
                    time_based=result.time is not None)


def _report(outcome: SaveOutcome) -> SaveReport:
    if outcome.created:
        return SaveReport(outcome.run_id, True, message=f"Stored as run {outcome.run_id}.")
    return SaveReport(outcome.run_id, False,
                      message=f"Already stored as run {outcome.run_id}: nothing was added.")


def replay(settings: Settings | None = None) -> list[SaveReport]:
    """Store journaled runs, oldest first; an entry is removed only after its run is
    committed. An entry the database refuses (or that cannot be read) is set aside under
    ``rejected/`` with its reason and the next one is stored: one bad entry never blocks
    the others. A failing connection stops the replay and keeps every entry."""
    settings = settings or get_settings()
    folder = settings.journal_dir
    reports = []
    with journal.lock(folder):
        for entry in journal.entries(folder):
            if not entry.exists():
                continue  # stored by a replay that ran before this one took the lock
            try:
                outcome = runs.save_run(engine(settings), run=journal.read(entry))
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


# -- live streams ----------------------------------------------------------------------
def stream_checkpoint(source: str, *, settings: Settings | None = None
                      ) -> tuple[int, pd.DataFrame | None]:
    """(rows stored, rows carried) where the stream ``source`` stopped; (0, None) new."""
    found = live.checkpoint(engine(settings), source=source)
    if found is None:
        return 0, None
    return found.position, pd.read_pickle(io.BytesIO(found.carried))


def latest_event_time(run_id: int, *, settings: Settings | None = None):
    return anomalies.latest_event_time(engine(settings), run_id=run_id)


def live_streams(*, settings: Settings | None = None) -> pd.DataFrame:
    """Every live stream with its rows stored and its last batch's time."""
    return live.streams(engine(settings))


def alert_stream(source: str, incident_ids: list[int] | None = None, *,
                 settings: Settings | None = None) -> list[AlertReport]:
    """Alert the live stream's incidents (``None``: every incident of its run, which a
    restart does in case it stopped between storing a batch and alerting it)."""
    settings = settings or get_settings()
    if incident_ids is None:
        found = live.checkpoint(engine(settings), source=source)
        incident_ids = [] if found is None else query_incidents(
            IncidentFilter(run_ids=[found.run_id]), limit=None, settings=settings)["id"].tolist()
    return [notify_incident(i, settings=settings) for i in incident_ids]


def store_stream_batch(result: ScoredFrame, *, source: str, start: int, end: int,
                       carried: pd.DataFrame, settings: Settings | None = None):
    """Store one scored batch of a live stream with its checkpoint, exactly once."""
    settings = settings or get_settings()
    batch = RunToSave.from_result(
        result, source_name=source, file_sha256="",
        incident_gap_minutes=settings.incident_gap_minutes(result.profile))
    buffer = io.BytesIO()
    carried.to_pickle(buffer)
    return live.append(engine(settings), source=source, batch=batch, start=start, end=end,
                       carried=buffer.getvalue())


def list_runs(*, limit: int = 100, before_id: int | None = None,
              settings: Settings | None = None):
    return runs.list_runs(engine(settings), limit=limit, before_id=before_id)


def get_run(run_id: int, *, settings: Settings | None = None):
    return runs.get_run(engine(settings), run_id=run_id)


def query_anomalies(filters: AnomalyFilter | None = None, *, limit: int | None = 1000,
                    offset: int = 0, with_data: bool = False, oldest_first: bool = False,
                    settings: Settings | None = None):
    return anomalies.query_anomalies(engine(settings), filters=filters or AnomalyFilter(),
                                     limit=limit, offset=offset, with_data=with_data,
                                     oldest_first=oldest_first)


def review(anomaly_ids, status: str, *, reviewed_by: str | None = None,
           note: str | None = None, settings: Settings | None = None) -> int:
    return anomalies.set_review_status(engine(settings), anomaly_ids=anomaly_ids,
                                       status=status, reviewed_by=reviewed_by, note=note)


def query_incidents(filters: IncidentFilter | None = None, *, limit: int | None = 1000,
                    oldest_first: bool = False, settings: Settings | None = None
                    ) -> pd.DataFrame:
    return incidents.query_incidents(engine(settings), filters=filters or IncidentFilter(),
                                     limit=limit, oldest_first=oldest_first)


def count_incidents(filters: IncidentFilter, *, settings: Settings | None = None) -> int:
    return incidents.count_incidents(engine(settings), filters=filters)


def review_incidents(incident_ids, status: str, *, reviewed_by: str | None = None,
                     note: str | None = None, settings: Settings | None = None) -> int:
    """Review incidents; every flagged row in them gets the same status."""
    return incidents.set_review_status(engine(settings), incident_ids=incident_ids,
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


def load_model(version: str, *, settings: Settings | None = None) -> Model:
    return _loaded((settings or get_settings()).database_url, version)


@lru_cache(maxsize=16)
def _loaded(url: str, version: str) -> Model:
    """A registered version never changes: each process loads it once (the API scores
    hundreds of small bodies a second with it)."""
    return registry.load_model(_engine_for(url), version=version)


def activate_model(version: str, *, settings: Settings | None = None) -> dict:
    return registry.activate_model(engine(settings), version=version)


def rollback_model(profile: str, *, settings: Settings | None = None) -> dict:
    return registry.rollback_model(engine(settings), profile=profile)


# -- alerts ------------------------------------------------------------------------
@dataclass(frozen=True)
class AlertReport:
    """What happened to a run's alert, in words for the user."""

    status: str  # sent, queued (held by the throttle), failed, skipped or duplicate
    message: str
    notification_id: int | None = None


def _smtp_config(settings: Settings) -> SmtpConfig | None:
    if not settings.smtp_host:
        return None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpConfig(host=settings.smtp_host, port=settings.smtp_port,
                      security=settings.smtp_security, username=settings.smtp_username,
                      password=password)


def _deliver(message, settings: Settings, *, name: str) -> tuple[str, int]:
    """SMTP when SMTP_HOST is set, else the outbox folder. Returns (transport, attempts)."""
    config = _smtp_config(settings)
    if config is None:
        return "outbox:" + write_outbox(message, settings.alert_outbox_dir, name=name), 1
    return send_smtp(message, config)


def _digest(parts: list[tuple[int, list[int]]], settings: Settings) -> Digest:
    """The digest of (run id, anomaly ids) parts, the run it is for first."""
    ids = [i for _, part_ids in parts for i in part_ids]
    found = anomalies.query_anomalies(engine(settings), filters=AnomalyFilter(ids=ids),
                                      limit=None, with_data=True)
    summaries = []
    for run_id, _ in parts:
        run = runs.get_run(engine(settings), run_id=run_id)
        summaries.append(RunSummary(run.id, run.source_name, run.profile, run.created_at,
                                    run.total_rows, run.anomaly_count, run.threshold_note))
    notes = []
    if len(parts) > 1:
        notes.append(f"Includes {len(parts) - 1} digest(s) held back earlier: at most "
                     f"{settings.alert_max_per_hour} emails per hour go to this team.")
    ids = found["incident_id"].dropna().unique().tolist()
    found_incidents = incidents.query_incidents(
        engine(settings), filters=IncidentFilter(ids=ids), limit=None)
    return Digest(summaries, found, settings.dashboard_url, settings.alert_min_severity, notes,
                  incidents=found_incidents)


def notify(run_id: int, *, settings: Settings | None = None) -> AlertReport:
    """Email a stored run's digest to its team, exactly once.

    The dedupe key (run and recipients) makes a rerun or a second click a no-op; the
    throttle holds a digest back (``queued``) when the team had ALERT_MAX_PER_HOUR emails
    in the last hour, and the next digest includes it.
    """
    settings = settings or get_settings()
    run = runs.get_run(engine(settings), run_id=run_id)
    if run is None:
        raise StorageError(f"no stored run with id {run_id}")
    ids = anomalies.open_anomaly_ids(engine(settings), run_id=run_id,
                                     severities=policy.severities_from(
                                         settings.alert_min_severity))
    if not ids:
        return AlertReport("skipped", f"No alert sent: run {run_id} has no open anomaly at "
                                      f"{settings.alert_min_severity} severity or above.")
    return _claim_and_send(run, ids, f"Run {run_id}'s alert",
                           lambda to: policy.dedupe_key(run_id, to), settings)


def notify_incident(incident_id: int, *, settings: Settings | None = None) -> AlertReport:
    """Email one incident of a live run to its team: once when it reaches
    ALERT_MIN_SEVERITY, once more if its severity rises, never twice for the same."""
    settings = settings or get_settings()
    found = incidents.query_incidents(engine(settings),
                                      filters=IncidentFilter(ids=[incident_id]), limit=1)
    if found.empty:
        raise StorageError(f"no stored incident with id {incident_id}")
    incident = found.iloc[0]
    if incident["severity"] not in policy.severities_from(settings.alert_min_severity) \
            or incident["review_status"] in CLOSED_STATUSES:
        return AlertReport("skipped", f"No alert sent: incident {incident_id} is "
                                      f"{incident['severity']}, {incident['review_status']}.")
    run = runs.get_run(engine(settings), run_id=int(incident["run_id"]))
    ids = anomalies.query_anomalies(engine(settings), filters=AnomalyFilter(
        incident_ids=[incident_id]), limit=None)["id"].tolist()
    return _claim_and_send(
        run, ids, f"Incident {incident_id}'s alert",
        lambda to: policy.incident_dedupe_key(incident_id, incident["severity"], to), settings)


def _claim_and_send(run, ids: list[int], what: str, dedupe, settings: Settings) -> AlertReport:
    """Send the digest of ``ids`` (anomalies of ``run``) unless its dedupe key was claimed
    before, or hold it back when the team's hourly limit is reached."""
    db_engine = engine(settings)
    team = policy.team_for(run.profile)
    recipients = policy.recipients_for(run.profile, security=settings.alert_to_security,
                                       maintenance=settings.alert_to_maintenance)
    if not recipients:
        variable = f"ALERT_TO_{team.upper()}"
        return AlertReport("skipped", f"No alert sent: {variable} is empty, so nobody "
                                      f"receives {run.profile} alerts.")
    group = policy.group_key(recipients)
    row, created = notifications.claim_notification(
        db_engine, run_id=run.id, dedupe_key=dedupe(recipients), recipients=group,
        subject="", anomaly_ids=ids)
    if not created:
        when = f" on {row.sent_at:%Y-%m-%d %H:%M}" if row.sent_at else ""
        return AlertReport("duplicate", f"{what} to the {team} team was already handled "
                           f"({row.status}{when}): nothing was sent again.", row.id)
    since = datetime.now(UTC) - timedelta(hours=1)
    if policy.throttled(notifications.sent_since(db_engine, recipients=group, since=since),
                        settings.alert_max_per_hour):
        notifications.record_attempt(
            db_engine, notification_id=row.id, status="queued", attempts=0,
            error=f"held back: {settings.alert_max_per_hour} emails went to this team in the "
                  "last hour; it joins the next digest")
        return AlertReport("queued", f"{what} is held back: the {team} team had "
                           f"{settings.alert_max_per_hour} emails in the last hour. It joins "
                           "the next digest.", row.id)
    held = notifications.held_back(db_engine, recipients=group, exclude_id=row.id)
    return _send_digest([row, *held], recipients, team, settings)


def _send_digest(rows, recipients: list[str], team: str, settings: Settings) -> AlertReport:
    db_engine = engine(settings)
    digest = _digest([(row.run_id, row.anomaly_ids) for row in rows], settings)
    notifications.set_subject(db_engine, notification_id=rows[0].id, subject=subject(digest))
    try:
        try:
            message = build_message(digest, sender=settings.smtp_from, recipients=recipients)
        except ValueError as exc:  # the email library refused a header (SMTP_FROM, ...)
            raise DeliveryError(f"the message could not be built ({exc})", temporary=False,
                                attempts=0) from None
        transport, attempts = _deliver(message, settings, name=f"run-{digest.run.run_id}")
    except DeliveryError as exc:
        notifications.record_attempt(db_engine, notification_id=rows[0].id, status="failed",
                                     error=str(exc), attempts=exc.attempts)
        return AlertReport("failed", f"The alert for run {digest.run.run_id} was not sent: "
                           f"{exc}. It is recorded; `vigil alerts retry` sends it again.",
                           rows[0].id)
    for row in rows:
        notifications.record_attempt(
            db_engine, notification_id=row.id, status="sent", transport=transport,
            attempts=attempts if row is rows[0] else 0)
    where = transport.removeprefix("outbox:") if transport.startswith("outbox:") else transport
    return AlertReport("sent", f"Alert for run {digest.run.run_id} sent to the {team} team "
                       f"({', '.join(recipients)}) via {where}: {message['Subject']}",
                       rows[0].id)


def retry_failed(*, settings: Settings | None = None) -> list[AlertReport]:
    """Send each failed notification once more."""
    settings = settings or get_settings()
    reports = []
    for row in notifications.notifications(engine(settings), status="failed"):
        run = runs.get_run(engine(settings), run_id=row.run_id)
        reports.append(_send_digest([row], row.recipients.split(","),
                                    policy.team_for(run.profile), settings))
    return reports


def send_test_email(to: str, *, settings: Settings | None = None) -> str:
    """Send a short test message; returns where it went. Raises DeliveryError."""
    settings = settings or get_settings()
    recipients = policy.parse_recipients(to)
    if not recipients:
        raise AlertError("give at least one address to send the test message to")
    message = probe_message(sender=settings.smtp_from, recipients=recipients,
                            dashboard_url=settings.dashboard_url)
    return _deliver(message, settings, name="test")[0]


def notification_log(*, limit: int = 200, settings: Settings | None = None):
    return notifications.notifications_frame(engine(settings), limit=limit)


def preview_digest(run_id: int, *, settings: Settings | None = None) -> tuple[str, str]:
    """(subject, HTML) of the digest the run would send now, without sending it."""
    settings = settings or get_settings()
    ids = anomalies.open_anomaly_ids(engine(settings), run_id=run_id,
                                     severities=policy.severities_from(
                                         settings.alert_min_severity))
    digest = _digest([(run_id, ids)], settings)
    return subject(digest), render_html(digest)


# -- exploring stored runs -----------------------------------------------------------
def count_anomalies(filters: AnomalyFilter, *, settings: Settings | None = None) -> int:
    return anomalies.count_anomalies(engine(settings), filters=filters)


def entity_counts(filters: AnomalyFilter, *, limit: int = 20,
                  settings: Settings | None = None):
    return anomalies.entity_counts(engine(settings), filters=filters, limit=limit)


def run_series(run_ids: list[int], *, settings: Settings | None = None) -> pd.DataFrame:
    """The binned rows of the runs' files, for the metric charts."""
    parts = []
    for run_id in run_ids:
        run = runs.get_run(engine(settings), run_id=run_id)
        if run is not None:
            parts.append(read_series(run.chart_data).assign(run_id=run_id))
    return pd.concat(parts, ignore_index=True) if parts else read_series(None)


def run_histogram(run_ids: list[int], *, settings: Settings | None = None) -> pd.DataFrame:
    """Rows per 1-point score bin over the runs' files: columns ``bin``, ``rows``."""
    rows = []
    for run_id in run_ids:
        run = runs.get_run(engine(settings), run_id=run_id)
        rows.extend((run.score_histogram or []) if run is not None else [])
    frame = pd.DataFrame(rows, columns=["bin", "rows"])
    return frame.groupby("bin", as_index=False)["rows"].sum()


def anomalies_csv(filters: AnomalyFilter, *, settings: Settings | None = None) -> bytes:
    """Every matching anomaly as formula-safe CSV: our columns, then the original row."""
    found = anomalies.query_anomalies(engine(settings), filters=filters, limit=None,
                                      with_data=True)
    buffer = io.BytesIO()
    write_csv(attachment_frame(found), buffer)
    return buffer.getvalue()


# -- the HTTP API ------------------------------------------------------------------------
def health(*, settings: Settings | None = None) -> dict[str, str | None]:
    """Each profile's active model version (None: no active model); raises
    :class:`StorageError` or ``DBAPIError`` when the database cannot answer."""
    active = {m["profile"]: m["version"] for m in list_models(settings=settings)
              if m["is_active"]}
    return {profile: active.get(profile) for profile in PROFILES}


def add_token(name: str, *, role: str, settings: Settings | None = None) -> str:
    """A new API token (shown once: only its hash is stored)."""
    return tokens.add(engine(settings), name=name, role=role)


def token_holder(token: str, *, settings: Settings | None = None) -> tokens.Holder | None:
    return tokens.holder(engine(settings), token)


def revoke_token(name: str, *, settings: Settings | None = None) -> bool:
    return tokens.revoke(engine(settings), name=name)


def list_tokens(*, settings: Settings | None = None) -> pd.DataFrame:
    return tokens.listed(engine(settings))


def score_rows(data: bytes, *, profile: str = "auto", model_version: str = ACTIVE,
               settings: Settings | None = None) -> ScoredFrame:
    """Score CSV rows with a registered model: what `vigil score --model` does."""
    dataset = read_dataset(data, profile=profile)
    model = resolve_model(model_version, profile=dataset.profile, settings=settings)
    model.check_profile(dataset.profile)
    return scoring.analyze(dataset, model=model)


class StreamConflictError(StorageError):
    """Another batch of the same stream was stored first: send this one again."""


@dataclass(frozen=True)
class Ingested:
    source: str
    run_id: int
    result: ScoredFrame
    position: int  # the stream's rows stored, this batch's included
    incident_ids: list[int]
    alerts: list[AlertReport]


def ingest(source: str, data: bytes, *, model_version: str = ACTIVE, profile: str = "auto",
           alert: bool = False, settings: Settings | None = None) -> Ingested:
    """One batch of CSV rows (with their header) into the live stream ``source``: scored
    after the rows stored before (what `vigil stream --save` does with each batch),
    stored with the stream's checkpoint, alerted when asked."""
    settings = settings or get_settings()
    position, carried = stream_checkpoint(source, settings=settings)
    frame = read_csv(data)
    frame.index = pd.RangeIndex(position + 1, position + len(frame) + 1, name="row")
    found = prepare(frame, profile=profile).profile
    model = resolve_model(model_version, profile=found, settings=settings)
    model.check_profile(found)
    scorer = StreamScorer(model)
    scorer.carried = carried
    result = scorer.score(frame)
    appended = store_stream_batch(result, source=source, start=position,
                                  end=position + len(frame), carried=scorer.carried,
                                  settings=settings)
    if not appended.stored:
        raise StreamConflictError(f"another batch of stream {source!r} was stored while this "
                                  "one was scored: send it again")
    reports = alert_stream(source, appended.incident_ids, settings=settings) \
        if alert and appended.incident_ids else []
    return Ingested(source, appended.run_id, result, position + len(frame),
                    appended.incident_ids, reports)
