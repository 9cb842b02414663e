"""Live streams: batches scored after what was stored before, stored with their checkpoint."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import pandas as pd

from app.chart_data import merged_bins, series_bins
from app.services.alerts import AlertReport, notify_incident
from app.services.analysis import ACTIVE, resolve_model, with_known
from app.vigil import Vigil
from detection import ScoredFrame, prepare, read_csv
from detection.errors import ModelMismatchError
from detection.stream import StreamScorer
from storage import anomalies, incidents, leases, live
from storage.errors import StorageError
from storage.incidents import IncidentFilter
from storage.runs import RunToSave


def stream_checkpoint(vigil: Vigil, source: str, profile: str | None = None
                      ) -> tuple[int, dict | pd.DataFrame | None]:
    """(rows stored, what the next batch needs: ``StreamScorer.state``, or the carried
    rows of a checkpoint written before the live path learned) where the stream
    ``source`` stopped; (0, None) new. With ``profile`` (the next rows'), a stream of
    another profile's rows is refused in words."""
    vigil.require("viewer")
    found = live.checkpoint(vigil.engine, source=source)
    if found is None:
        return 0, None
    if profile is not None and profile != found.profile:
        raise ModelMismatchError(f"stream {source!r} holds {found.profile} rows; these read "
                                 f"as {profile} rows: send them to a stream of their own")
    return found.position, pickle.loads(found.carried)  # noqa: S301 - our own checkpoint


def latest_event_time(vigil: Vigil, run_id: int):
    vigil.require("viewer")
    return anomalies.latest_event_time(vigil.engine, run_id=run_id)


def live_streams(vigil: Vigil) -> pd.DataFrame:
    """Every live stream with its rows stored and its last batch's time."""
    vigil.require("viewer")
    return live.streams(vigil.engine)


def alert_stream(vigil: Vigil, source: str,
                 incident_ids: list[int] | None = None) -> list[AlertReport]:
    """Alert the live stream's incidents (``None``: every incident of its run, which a
    restart does in case it stopped between storing a batch and alerting it)."""
    vigil.require("analyst")
    if incident_ids is None:
        with vigil.unit() as session:
            found = live.checkpoint(session, source=source)
            incident_ids = [] if found is None else incidents.query_incidents(
                session, filters=IncidentFilter(run_ids=[found.run_id]), limit=None
            )["id"].tolist()
    return [notify_incident(vigil, i) for i in incident_ids]


@contextmanager
def stream_writer(vigil: Vigil, source: str, what: str) -> Iterator[leases.Writer]:
    """Write the live stream ``source`` as its only writer for the block: its lease is
    taken (:class:`StreamConflictError` when another writer holds it), renewed every
    third of its term while the block runs, and given back at the end. ``what`` names
    the writer to whoever is refused ("vigil stream", "API batch")."""
    vigil.require("analyst")
    source = live.checked_source(source)
    writer = leases.Writer.this_process(what)
    leases.acquire(vigil.engine, source=source, writer=writer)
    stop = threading.Event()

    def renew() -> None:
        # A renewal that fails (database down, lease taken after a long stall) is left
        # to the next batch, whose own check refuses it in words.
        while not stop.wait(leases.LEASE_S / 3):
            try:
                leases.acquire(vigil.engine, source=source, writer=writer)
            except StorageError:
                continue

    heartbeat = threading.Thread(target=renew, name=f"lease-{source}", daemon=True)
    heartbeat.start()
    try:
        yield writer
    finally:
        stop.set()
        heartbeat.join()
        leases.release(vigil.engine, source=source, writer=writer)


def store_stream_batch(vigil: Vigil, writer: leases.Writer, result: ScoredFrame, *,
                       source: str, start: int, end: int, carried: dict):
    """Store one scored batch of a live stream with its checkpoint, exactly once:
    :class:`StreamConflictError` when ``writer`` no longer holds the stream or the batch
    does not follow what is stored."""
    vigil.require("analyst")
    batch = RunToSave.from_result(
        result, source_name=source, file_sha256="", chart_data=series_bins(result),
        incident_gap_minutes=vigil.settings.incident_gap_minutes(result.profile))
    return live.append(vigil.engine, source=source, writer=writer, batch=batch, start=start,
                       end=end, carried=pickle.dumps(carried, pickle.HIGHEST_PROTOCOL),
                       merge_chart=merged_bins)


@dataclass(frozen=True)
class Ingested:
    source: str
    run_id: int
    result: ScoredFrame
    position: int  # the stream's rows stored, this batch's included
    incident_ids: list[int]
    alerts: list[AlertReport]


def ingest(vigil: Vigil, source: str, data: bytes, *, model_version: str = ACTIVE,
           profile: str = "auto", alert: bool = False) -> Ingested:
    """One batch of CSV rows (with their header) into the live stream ``source``: scored
    after the rows stored before (what `vigil stream --save` does with each batch),
    stored with the stream's checkpoint, alerted when asked."""
    vigil.require("analyst")
    frame = read_csv(data)
    found = prepare(frame, profile=profile).profile
    model = resolve_model(vigil, model_version, profile=found)
    model.check_profile(found)
    with stream_writer(vigil, source, "an API batch") as writer:
        position, carried = stream_checkpoint(vigil, source, found)
        frame.index = pd.RangeIndex(position + 1, position + len(frame) + 1, name="row")
        scorer = StreamScorer(model, known=partial(with_known, vigil), learn=True)
        scorer.state = carried
        result = scorer.score(frame)
        appended = store_stream_batch(vigil, writer, result, source=source, start=position,
                                      end=position + len(frame), carried=scorer.state)
    reports = alert_stream(vigil, source, appended.incident_ids) \
        if alert and appended.incident_ids else []
    return Ingested(source, appended.run_id, result, position + len(frame),
                    appended.incident_ids, reports)
