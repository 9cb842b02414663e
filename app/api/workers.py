"""The API's CPU work (scoring a body, an uploaded run, a stream batch) and the
processes that do it, fed from one queue in arrival order.

Scoring holds the GIL (pandas, the features), so the API does it in other processes. It
used to run uvicorn workers, one per core, each scoring on its own event loop; but each
worker keeps the keep-alive connections it happened to accept (in ``bench/api.py`` 50
clients split 34 to 16), so one core queued twice as long as the other, and an event
loop busy scoring served its connections in no fair order (p99 three to six times the
median). Here one event loop answers HTTP and hands each job, first come first served,
to whichever worker process is free: latency follows arrival, whatever the connections.

A job is a function of this module taking the application (acting for the request's
token holder) first and returning an :class:`Answer`; its errors reach the event loop
as they were raised (the API's error table answers them).
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from alerts import policy
from app import scoring, services
from app.api import metrics
from app.settings import Settings
from app.vigil import Actor, Vigil
from detection import SCORE_COLUMNS
from detection.export import write_csv

CSV = "text/csv"
JSON = "application/json"

_vigil: Vigil | None = None  # in a worker process: its own application and engine


class WorkerUnavailable(RuntimeError):
    """A worker process stopped (killed, out of memory); the pool was restarted."""


class NotStored(RuntimeError):
    """The database refused a run and the journal could not keep it either."""


@dataclass(frozen=True)
class Answer:
    """A job's answer, ready to send, and what the metrics count of it."""

    body: bytes
    media_type: str = JSON
    status: int = 200
    counted: tuple[str, int, dict[str, int], float] | None = None  # profile, rows, flagged, s
    alerted: tuple[str, list] | None = None  # team, alert reports

    def count(self) -> None:
        if self.counted:
            metrics.record(*self.counted)
        if self.alerted:
            metrics.alerted(*self.alerted)


def json_value(value: Any) -> Any:
    """A cell as JSON: NaN and NaT as null, times in ISO 8601, numpy scalars as numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if value is pd.NaT or value is None:
        return None
    if hasattr(value, "item"):  # numpy scalars
        return json_value(value.item())
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    frame = frame.astype(object).where(frame.notna(), None)
    return [{str(k): json_value(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _json(body: dict) -> bytes:
    return json.dumps(body).encode()


# -- jobs -------------------------------------------------------------------------------
def score_body(vigil: Vigil, data: bytes, profile: str, model: str, as_csv: bool) -> Answer:
    """`POST /v1/score`: the rows with the four score columns, as CSV or JSON."""
    started = time.perf_counter()
    result = services.score_rows(vigil, data, profile=profile, model_version=model)
    seconds = time.perf_counter() - started
    if as_csv:
        out = io.BytesIO()
        write_csv(result.frame, out)
        body, media_type = out.getvalue(), CSV
    else:
        head = {"profile": result.profile, "model": result.model_version,
                "threshold_note": result.threshold_note, "warnings": list(result.warnings)}
        body = (json.dumps(head)[:-1] + ', "rows": ' +
                result.frame.to_json(orient="records", date_format="iso") + "}").encode()
        media_type = JSON
    return Answer(body, media_type, counted=(result.profile, len(result.frame),
                                             metrics.flagged(result.frame), seconds))


def create_run(vigil: Vigil, data: bytes, source_name: str, profile: str,
               model: str | None, params: dict, alert: bool) -> Answer:
    """`POST /v1/runs`: score an upload and store it once (201 new, 200 stored before)."""
    started = time.perf_counter()
    analysis = services.analyze_upload(
        vigil, data, source_name=source_name, file_sha256=scoring.file_sha256(data),
        profile=profile, model_version=model, **params)
    run = analysis.run
    report = services.store(vigil, run)
    counted = (run.profile, run.total_rows, run.severity_counts,
               time.perf_counter() - started)
    if not report.stored:
        raise NotStored(report.message)
    body = {"run_id": report.run_id, "created": report.created, "rows": run.total_rows,
            "flagged": len(run.anomalies), "warnings": run.warnings}
    alerted = None
    if alert:
        sent = services.notify(vigil, report.run_id)
        alerted = (policy.team_for(run.profile), [sent])
        body["alert"] = {"status": sent.status, "message": sent.message}
    return Answer(_json(body), status=201 if report.created else 200, counted=counted,
                  alerted=alerted)


def stream_events(vigil: Vigil, source: str, data: bytes, model: str, profile: str,
                  alert: bool) -> Answer:
    """`POST /v1/streams/{source}/events`: a batch scored after the stream's earlier rows
    and stored with them."""
    started = time.perf_counter()
    done = services.ingest(vigil, source, data, model_version=model, profile=profile,
                           alert=alert)
    frame = done.result.frame
    body = {"source": source, "run_id": done.run_id, "position": done.position,
            "rows": len(frame), "flagged": int(frame["is_anomaly"].sum()),
            "incidents": done.incident_ids,
            "alerts": [{"status": a.status, "message": a.message} for a in done.alerts],
            "scores": records(frame[list(SCORE_COLUMNS)].reset_index())}
    return Answer(_json(body), counted=(done.result.profile, len(frame),
                                        metrics.flagged(frame),
                                        time.perf_counter() - started),
                  alerted=(policy.team_for(done.result.profile), done.alerts))


# -- the pool ---------------------------------------------------------------------------
def _start(settings: Settings) -> None:
    """In each new worker process: the application, what scoring imports, and the
    garbage collector told to leave those long-lived objects alone (its full
    collections otherwise walk SciPy's and pandas' objects mid-request). What the fork
    server imported is frozen there already (app.api.fork_template); this freezes what
    the worker made, and what a worker started without the fork server imported."""
    global _vigil
    import sklearn.ensemble  # noqa: F401 - imported for its side effect: loaded once

    import detection.forest_kernel  # noqa: F401
    import detection.learning_kernel  # noqa: F401
    _vigil = Vigil(settings)
    gc.collect()
    gc.freeze()


def _run(job, actor: Actor, *args) -> Answer:
    return job(_vigil.acting_as(actor), *args)


def _ready() -> None:
    time.sleep(0.05)  # long enough that each process takes one


@dataclass
class WorkerPool:
    """``processes`` worker processes, forked from a server process that imported Vigil
    once (a new one starts in milliseconds)."""

    settings: Settings
    processes: int
    _executor: ProcessPoolExecutor = field(init=False)

    def __post_init__(self):
        self._executor = self._new()

    def _new(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        # What every worker imports, loaded once in the fork server: a new or replaced
        # worker starts in milliseconds instead of importing scikit-learn and the
        # compiled kernels (2 s) again.
        context.set_forkserver_preload(["app.api.workers", "sklearn.ensemble",
                                        "detection.forest_kernel", "detection.learning_kernel",
                                        "app.api.fork_template"])
        return ProcessPoolExecutor(self.processes, mp_context=context,
                                   initializer=_start, initargs=(self.settings,))

    def start(self) -> None:
        """Start every process now rather than on the first requests."""
        for future in [self._executor.submit(_ready) for _ in range(self.processes)]:
            future.result()

    async def run(self, job, actor: Actor, *args) -> Answer:
        """``job(vigil acting for actor, *args)`` in a free worker process. A process
        that died is replaced, and the request answered :class:`WorkerUnavailable`."""
        executor = self._executor
        try:
            return await asyncio.wrap_future(executor.submit(_run, job, actor, *args))
        except BrokenProcessPool:
            if self._executor is executor:  # the first request to notice replaces it
                self._executor = self._new()
                executor.shutdown(wait=False, cancel_futures=True)
            raise WorkerUnavailable("a worker process stopped (out of memory, or killed); "
                                    "it was replaced: send the request again") from None

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
