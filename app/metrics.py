"""Prometheus metrics of the HTTP API (`GET /metrics`, text exposition format).

Counters and histograms count what this API's processes did; the active models and each
live stream's lag are read from the database when scraped, so every worker reports the
same. With several uvicorn workers, ``vigil serve`` sets ``PROMETHEUS_MULTIPROC_DIR``
before any worker starts: each process writes its counts there and a scrape, whichever
worker answers it, adds them up (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app import services
from app.vigil import Vigil
from detection import ScoredFrame

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

ROWS_SCORED = Counter("vigil_rows_scored", "Rows scored, by profile.", ["profile"],
                      registry=None)
ANOMALIES = Counter("vigil_anomalies", "Rows flagged, by profile and severity.",
                    ["profile", "severity"], registry=None)
ALERTS = Counter("vigil_alerts", "Alert digests, by team and outcome (sent, queued, "
                 "failed, skipped, duplicate).", ["team", "outcome"], registry=None)
SCORING_SECONDS = Histogram("vigil_scoring_duration_seconds",
                            "Time to read, score and (for runs and streams) store a body.",
                            ["profile"], registry=None,
                            buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
HTTP_SECONDS = Histogram("vigil_http_request_duration_seconds",
                         "HTTP requests, by route template, method and status.",
                         ["route", "method", "status"], registry=None,
                         buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
COUNTED = (ROWS_SCORED, ANOMALIES, ALERTS, SCORING_SECONDS, HTTP_SECONDS)


def scored(result: ScoredFrame, seconds: float) -> None:
    """Count a scored body's rows and flags."""
    severity = result.frame["severity"]
    record(result.profile, len(result.frame),
           severity[severity != "none"].value_counts().to_dict(), seconds)


def record(profile: str, rows: int, flagged: dict[str, int], seconds: float) -> None:
    ROWS_SCORED.labels(profile).inc(rows)
    for severity, count in flagged.items():
        ANOMALIES.labels(profile, str(severity)).inc(int(count))
    SCORING_SECONDS.labels(profile).observe(seconds)


def alerted(team: str, reports) -> None:
    for report in reports:
        ALERTS.labels(team, report.status).inc()


class StoredState(Collector):
    """What the database says at scrape time: active models and live streams' lag."""

    def __init__(self, vigil: Vigil):
        self.vigil = vigil

    def collect(self):
        info = GaugeMetricFamily("vigil_model_info", "The active model of each profile "
                                 "(value 1).", labels=["profile", "version"])
        for profile, version in services.health(self.vigil).items():
            if version:
                info.add_metric([profile, version], 1)
        yield info
        lag = GaugeMetricFamily("vigil_stream_lag_seconds", "Seconds since each live "
                                "stream's last stored batch.", labels=["source"])
        now = datetime.now(UTC)
        for row in services.live_streams(self.vigil).itertuples():
            lag.add_metric([row.source], (now - row.updated_at).total_seconds())
        yield lag


def exposition(vigil: Vigil) -> bytes:
    """The metrics as Prometheus' text format."""
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_ENV):
        multiprocess.MultiProcessCollector(registry)
    else:
        for metric in COUNTED:
            registry.register(metric)
    registry.register(StoredState(vigil))
    return generate_latest(registry)
