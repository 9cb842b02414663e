"""`vigil serve`: the HTTP API, over the same use cases as the dashboard and the CLI.

Routes read and score through :mod:`app.services`: a body scored here gets the scores
`vigil score --model` gives the same rows, a run is saved once however often it is
posted, a stream batch goes where `vigil stream --save` puts it. Errors are
``application/problem+json`` (RFC 9457) carrying the CLI's message. Every ``/v1`` route
needs ``Authorization: Bearer <token>`` (``vigil tokens add NAME --role ROLE --user USER``): viewer
reads, analyst also scores, uploads and reviews, admin may do everything.
"""

from __future__ import annotations

import importlib.util
import pathlib
import time
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from typing import Annotated, Any

import pandas as pd
from fastapi import Depends, FastAPI, File, Form, Path, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException

from app import services
from app.api import metrics, workers
from app.api.workers import json_value, records
from app.errors import NotAllowedError
from app.settings import Settings
from app.vigil import Actor, Vigil
from detection.calibration import SEVERITIES
from detection.errors import DetectionError
from detection.threads import THREADS
from storage.anomalies import AnomalyFilter
from storage.errors import DatabaseError, ModelNotFoundError, StorageError
from storage.incidents import IncidentFilter
from storage.schema import REVIEW_STATUSES

FLAGGED_SEVERITIES = SEVERITIES[1:]  # a flagged row's (or incident's): never "none"

PROBLEM = "application/problem+json"
DOCS_ASSETS = "/docs/assets"
CSV = workers.CSV
MAX_PAGE = 1000
MAX_ID = 2**63 - 1  # ids are 64-bit: a larger one names nothing (SQLite overflowed: 500)
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
RunIds = Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]], Query()]
AfterId = Annotated[int | None, Query(ge=0, le=MAX_ID)]


class Problem(Exception):
    """An error answered as problem+json: status, a short title, the message in words."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any):
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


class BodyTooLarge(Exception):
    pass


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"type": "about:blank", "title": title, "status": status,
                         "detail": detail, **extra}, status_code=status,
                        media_type=PROBLEM, headers=headers)


# -- requests ------------------------------------------------------------------------
class ScoreRequest(BaseModel):
    profile: str = "auto"
    model: str = services.ACTIVE
    rows: list[dict[str, Any]] = Field(min_length=1)


class EventsRequest(BaseModel):
    rows: list[dict[str, Any]] = Field(min_length=1)


class ReviewRequest(BaseModel):
    status: str
    note: str | None = None


def _csv_of(rows: list[dict[str, Any]]) -> bytes:
    """JSON rows as the CSV file they stand for (columns in order of first appearance),
    so that they are read, typed and checked exactly as an uploaded file."""
    for number, row in enumerate(rows, 1):
        for key, value in row.items():
            if isinstance(value, dict | list):
                raise Problem(422, "Unprocessable content",
                              f"row {number}, {key!r}: a value must be a number, text, "
                              "true/false or null, not a list or an object")
    return pd.DataFrame.from_records(rows).to_csv(index=False).encode()


async def _body(request: Request) -> bytes:
    return await request.body()


async def _rows_body(request: Request, model: type[BaseModel]) -> tuple[bytes, BaseModel | None]:
    """The request's rows as CSV bytes: a text/csv body as it is, a JSON body converted."""
    data = await _body(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in (CSV, "text/plain", "application/csv"):
        return data, None
    if kind != "application/json":
        raise Problem(415, "Unsupported media type",
                      f"send application/json or text/csv; got {kind or 'no content type'}")
    try:
        parsed = model.model_validate_json(data)
    except ValidationError as exc:
        raise Problem(422, "Unprocessable content", _validation_text(exc.errors())) from None
    return _csv_of(parsed.rows), parsed


def _validation_text(errors) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}:"
                     f" {e.get('msg', '')}" for e in errors)


async def _work(request: Request, job, vigil: Vigil, *args) -> Response:
    """``job`` in a worker process (:mod:`app.api.workers`), counted and answered."""
    answer = await request.app.state.workers.run(job, vigil.actor, *args)
    answer.count()
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type)


def _wants_csv(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return CSV in accept and "application/json" not in accept.split(",")[0]


# Errors of the use cases, as (class, status, title); the message is the CLI's.
ERRORS = [
    (DetectionError, 400, "Bad input"),
    (StorageError, 400, "Bad input"),
    (NotAllowedError, 403, "Forbidden"),
    (ModelNotFoundError, 404, "Model not found"),
    (services.StreamConflictError, 409, "Conflict"),
    (DatabaseError, 503, "Database unavailable"),
    (workers.NotStored, 503, "Not stored"),
    (workers.WorkerUnavailable, 503, "Worker unavailable"),
]


# -- auth ------------------------------------------------------------------------------
UNAUTHORIZED = ("send Authorization: Bearer <token> (made with `vigil tokens add NAME "
                "--role ROLE --user USER`)")


def _bearer_of(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _bearer(request: Request) -> str | None:
    return _bearer_of(request.headers.get("authorization", ""))


def _needs(role: str):
    """A dependency giving the application acting for the token's holder (their name is
    the reviewer and the audit log's actor), or refusing the request (401, 403).

    async: the lookup (an indexed read) runs on the event loop, not through a thread
    hop, which under load only adds latency; scoring runs there too (CPU-bound: one
    body at a time per worker, in arrival order, is the fairest use of a core)."""
    async def check(request: Request) -> Vigil:
        token = _bearer(request)
        if token is None:
            raise Problem(401, "Unauthorized", UNAUTHORIZED)
        holder = getattr(request.state, "token_holder", None) \
            or services.token_holder(request.app.state.vigil, token)
        if holder is None:
            raise Problem(401, "Unauthorized", "the token is unknown or revoked")
        if not holder.may(role):
            raise Problem(403, "Forbidden", f"this needs the {role} role; the token "
                          f"{holder.name!r} has the {holder.role} role")
        return request.app.state.vigil.acting_as(Actor(holder.name, holder.role))
    return check


def _open_or_token(request: Request) -> None:
    """/health and /metrics: open, unless METRICS_TOKEN is set."""
    wanted = request.app.state.settings.metrics_token
    if wanted is not None and _bearer(request) != wanted.get_secret_value():
        raise Problem(401, "Unauthorized", "send Authorization: Bearer <METRICS_TOKEN>")


Viewer = Annotated[Vigil, Depends(_needs("viewer"))]
Analyst = Annotated[Vigil, Depends(_needs("analyst"))]


# -- the application -------------------------------------------------------------------
@asynccontextmanager
async def _lifespan(app: FastAPI):
    """The worker processes run from before the first request to shutdown."""
    app.state.workers.start()
    try:
        yield
    finally:
        app.state.workers.close()


def _serve_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` from the files the swagger-ui-py package carries (Swagger
    UI 5, which reads FastAPI's OpenAPI 3.1), not from a CDN: the page works where the
    server or the browser has no internet. Only the package's folder is read."""
    package = importlib.util.find_spec("swagger_ui").submodule_search_locations[0]
    app.mount(DOCS_ASSETS, StaticFiles(directory=pathlib.Path(package) / "static"),
              name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title="Vigil API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png")


def create_app(settings: Settings | None = None, *, processes: int = THREADS) -> FastAPI:
    """The API; ``processes`` worker processes score (one per core by default)."""
    vigil = Vigil(settings)
    settings = vigil.settings
    limit = int(settings.api_max_body_mb * 1024 * 1024)
    app = FastAPI(title="Vigil", version="1", summary="Anomaly detection for sensor "
                  "readings and login activity: score, store, review, stream.",
                  lifespan=_lifespan, docs_url=None, redoc_url=None)
    _serve_docs(app)
    app.state.settings, app.state.vigil = settings, vigil
    app.state.workers = workers.WorkerPool(settings, processes)

    # -- errors, all as problem+json --------------------------------------------------
    @app.exception_handler(Problem)
    async def _problem(_request, exc: Problem):
        return problem(exc.status, exc.title, exc.detail, **exc.extra)

    def answer(status: int, title: str):
        async def handler(_request, exc: Exception):
            return problem(status, title, str(exc))
        return handler

    # The most specific class wins (DatabaseError before StorageError).
    for error, status, title in ERRORS:
        app.add_exception_handler(error, answer(status, title))

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_request, _exc):
        return problem(413, "Content too large", f"the body is over API_MAX_BODY_MB "
                       f"({settings.api_max_body_mb:g} MB)")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request, exc: RequestValidationError):
        return problem(422, "Unprocessable content", _validation_text(exc.errors()))

    @app.exception_handler(HTTPException)
    async def _http(_request, exc: HTTPException):
        titles = {404: "Not found", 405: "Method not allowed"}
        return problem(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail))

    app.add_middleware(Guard, limit=limit, megabytes=settings.api_max_body_mb,
                       holder_of=lambda token: services.token_holder(vigil, token))

    # -- health and metrics ---------------------------------------------------------------
    @app.get("/health", dependencies=[Depends(_open_or_token)], tags=["operations"])
    def health():
        """200 when the database answers, with each profile's active model; else 503."""
        try:
            models = services.health(vigil)
        except StorageError as exc:
            # The driver's words name the database's host and port: only to a caller
            # holding the metrics token, never to the anonymous.
            detail = str(exc) if settings.metrics_token is not None else "unavailable"
            return problem(503, "Unhealthy", f"database: {detail}", database="failing")
        return {"status": "ok", "database": "ok", "models": models}

    @app.get("/metrics", dependencies=[Depends(_open_or_token)], tags=["operations"])
    def prometheus():
        """Prometheus text format: rows scored, anomalies, alerts, durations, models,
        stream lag."""
        return Response(metrics.exposition(vigil), media_type=metrics.CONTENT_TYPE)

    # -- scoring --------------------------------------------------------------------------
    rows_body = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": ScoreRequest.model_json_schema()},
        CSV: {"schema": {"type": "string"}}}}}

    @app.post("/v1/score", openapi_extra=rows_body, tags=["scoring"])
    async def score(request: Request, vigil: Analyst,
                    profile: str = "auto", model: str = services.ACTIVE):
        """Score rows with a registered model (``active``: the profile's active one), or
        with ``fit`` a model fitted on the rows themselves: a JSON body ``{"profile",
        "model", "rows": [...]}`` or a CSV body (``?profile=``, ``?model=``). Answers the
        rows with the four score columns, as JSON or, with ``Accept: text/csv``, CSV."""
        data, parsed = await _rows_body(request, ScoreRequest)
        if parsed is not None:
            profile, model = parsed.profile, parsed.model
        return await _work(request, workers.score_body, vigil, data, profile, model,
                           _wants_csv(request))

    # -- runs ---------------------------------------------------------------------------
    @app.post("/v1/runs", status_code=201, tags=["runs"])
    async def create_run(request: Request, vigil: Analyst,
                         file: Annotated[UploadFile, File()],
                         profile: Annotated[str, Form()] = "auto",
                         model: Annotated[str, Form(description="fit (on the file), active "
                                                                 "or a version")] = "fit",
                         contamination: Annotated[float | None, Form(gt=0, le=0.5)] = None,
                         alert: bool = False):
        """Score an uploaded CSV or Parquet file and store the run, once: posting the same file with the
        same settings again answers the stored run (``created: false``, status 200).
        ``?alert=true`` sends its alert (once)."""
        params = {} if contamination is None or model != "fit" \
            else {"contamination": contamination}
        return await _work(request, workers.create_run, vigil, await file.read(),
                           file.filename or "upload.csv", profile,
                           None if model == "fit" else model, params, alert)

    @app.get("/v1/runs", tags=["runs"])
    def list_runs(vigil: Viewer, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
                  before: Annotated[int | None, Query(ge=0, le=MAX_ID, description="cursor: "
                                                      "the previous page's next")] = None):
        """Stored runs, newest first, a page at a time."""
        found = services.list_runs(vigil, limit=limit, before_id=before)
        items = [_run(r) for r in found]
        return {"items": items, "next": items[-1]["id"] if len(items) == limit else None}

    @app.get("/v1/runs/{run_id}", tags=["runs"])
    def get_run(run_id: RowId, vigil: Viewer):
        found = services.get_run(vigil, run_id)
        if found is None:
            raise Problem(404, "Not found", f"no run {run_id}")
        return _run(found)

    # -- anomalies and incidents -----------------------------------------------------------
    @app.get("/v1/anomalies", tags=["review"])
    def list_anomalies(vigil: Viewer, run: RunIds = (),
                       severity: Annotated[list[str], Query()] = (),
                       entity: Annotated[list[str], Query()] = (),
                       status: Annotated[list[str], Query()] = (),
                       since: datetime | None = None, after: AfterId = None,
                       limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100):
        """Flagged rows in the order they were stored, with their original row
        (``data``); ``after`` is the previous page's ``next``."""
        filters = AnomalyFilter(run_ids=run, severities=_severities(severity), entities=entity,
                                review_statuses=_statuses(status), since=since,
                                after_id=after)
        frame = services.query_anomalies(vigil, filters, limit=limit, with_data=True,
                                         oldest_first=True)
        return _page(frame, limit)

    @app.patch("/v1/anomalies/{anomaly_id}", tags=["review"])
    def review_anomaly(anomaly_id: RowId, change: ReviewRequest, vigil: Analyst):
        """Set a flagged row's review status (and note); the reviewer is the token's name."""
        _statuses([change.status])
        if not services.review(vigil, [anomaly_id], change.status,
                               note=change.note):
            raise Problem(404, "Not found", f"no anomaly {anomaly_id}")
        frame = services.query_anomalies(vigil, AnomalyFilter(ids=[anomaly_id]), with_data=True)
        return records(frame)[0]

    @app.get("/v1/incidents", tags=["review"])
    def list_incidents(vigil: Viewer, run: RunIds = (),
                       severity: Annotated[list[str], Query()] = (),
                       entity: Annotated[list[str], Query()] = (),
                       status: Annotated[list[str], Query()] = (),
                       since: datetime | None = None, after: AfterId = None,
                       limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100):
        """Incidents (an entity's flagged rows close in time) in the order they were
        stored; ``since``: still going on at or after that time."""
        filters = IncidentFilter(run_ids=run, severities=_severities(severity), entities=entity,
                                 review_statuses=_statuses(status), since=since,
                                 after_id=after)
        frame = services.query_incidents(vigil, filters, limit=limit, oldest_first=True)
        return _page(frame, limit)

    @app.patch("/v1/incidents/{incident_id}", tags=["review"])
    def review_incident(incident_id: RowId, change: ReviewRequest, vigil: Analyst):
        """Review an incident; each of its rows gets the same status."""
        _statuses([change.status])
        if not services.review_incidents(vigil, [incident_id], change.status,
                                         note=change.note):
            raise Problem(404, "Not found", f"no incident {incident_id}")
        frame = services.query_incidents(vigil, IncidentFilter(ids=[incident_id]))
        return records(frame)[0]

    # -- live streams ----------------------------------------------------------------------
    @app.post("/v1/streams/{source}/events", openapi_extra=rows_body, tags=["streams"])
    async def stream_events(source: str, request: Request, vigil: Analyst,
                            model: str = services.ACTIVE, profile: str = "auto",
                            alert: bool = False):
        """Rows (JSON ``{"rows": [...]}``, or CSV lines under their header) into the live
        stream ``source``: scored after its earlier rows and stored with them, as
        `vigil stream --save --source SOURCE` does, learning as it goes. 409: another
        writer holds the stream (a running `vigil stream`, or another batch at the same
        moment: send again). 400: the rows are of another profile than the stream's."""
        data, _ = await _rows_body(request, EventsRequest)
        return await _work(request, workers.stream_events, vigil, source, data, model,
                           profile, alert)

    return app


class Guard:
    """Pure ASGI middleware (bodies are never buffered twice): refuses what needs no
    reading to refuse, and times each request by route template, method and status.

    - a body over the limit: 413, by Content-Length at once, or while a chunked body is
      read (whatever the route was doing with it: parsing a form, say);
    - a body sent to ``/v1`` without a valid token: 401 before a byte of it is read (a
      60 MB upload was parsed, 3.8 s, before its 401); the holder found is handed on to
      the route's own check in ``scope["state"]``;
    - a NUL character in the query string or the path: 422 (the database refuses it
      in text).
    """

    def __init__(self, app, *, limit: int, megabytes: float, holder_of):
        self.app, self.limit, self.megabytes = app, limit, megabytes
        self.holder_of = holder_of

    def _refusal(self, scope) -> JSONResponse | None:
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            return problem(413, "Content too large", f"the body is over API_MAX_BODY_MB "
                           f"({self.megabytes:g} MB)")
        for part, holds in (("query string", b"%00" in scope.get("query_string", b"")),
                            ("path", "\x00" in scope.get("path", ""))):
            if holds:
                return problem(422, "Unprocessable content", f"the {part} holds a NUL "
                               "character (%00), which no value may hold")
        if scope["path"].startswith("/v1/") and scope["method"] in ("POST", "PUT", "PATCH"):
            token = _bearer_of(headers.get(b"authorization", b"").decode("latin-1"))
            holder = self.holder_of(token) if token else None
            if holder is None:
                return problem(401, "Unauthorized", UNAUTHORIZED if token is None
                               else "the token is unknown or revoked")
            scope.setdefault("state", {})["token_holder"] = holder
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status, over, started_response = 500, False, False

        async def sending(message):
            nonlocal status, started_response
            if over:  # the app's answer to a body cut short: ours is sent instead
                return
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, sending)
        else:
            seen = 0

            async def receiving():
                nonlocal seen, over
                message = await receive()
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    raise BodyTooLarge
                return message

            with suppress(BodyTooLarge):  # answered below
                await self.app(scope, receiving, sending)
            if over and not started_response:
                over = False
                await problem(413, "Content too large", f"the body is over API_MAX_BODY_MB "
                              f"({self.megabytes:g} MB)")(scope, receive, sending)
        route = getattr(scope.get("route"), "path", "(unmatched)")
        metrics.HTTP_SECONDS.labels(route, scope.get("method", ""), str(status)).observe(
            time.perf_counter() - started)


def _one_of(name: str, values, allowed) -> list[str]:
    """``values`` of the filter or field ``name``, each one of ``allowed`` (a typo is 422,
    not an empty page that reads as "none found")."""
    wrong = [v for v in values if v not in allowed]
    if wrong:
        raise Problem(422, "Unprocessable content", f"{name} must be one of "
                      f"{', '.join(allowed)}; got {wrong[0]!r}")
    return list(values)


def _statuses(statuses) -> list[str]:
    return _one_of("status", statuses, REVIEW_STATUSES)


def _severities(severities) -> list[str]:
    return _one_of("severity", severities, FLAGGED_SEVERITIES)


def _run(run) -> dict[str, Any]:
    fields = ("id", "created_at", "source_name", "file_sha256", "profile", "detector",
              "model_version", "parameters", "threshold", "threshold_note", "total_rows",
              "anomaly_count", "severity_counts", "entity_column", "time_column", "status",
              "warnings")
    return {name: json_value(getattr(run, name)) for name in fields}


def _page(frame: pd.DataFrame, limit: int) -> dict[str, Any]:
    items = records(frame)
    return {"items": items, "next": items[-1]["id"] if len(items) == limit else None}
