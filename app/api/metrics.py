"""Prometheus metrics of the HTTP API (`GET /metrics`, text exposition format).

Counters and histograms count what the API did: one process answers HTTP and counts, the
worker processes sending their figures back with their answers (:mod:`app.api.workers`).
The active models and each live stream's lag are read from the database when scraped.
"""

from __future__ import annotations

import collections
from datetime import UTC, datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app import services
from app.vigil import Vigil

CONTENT_TYPE = CONTENT_TYPE_LATEST

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


def flagged(frame) -> dict[str, int]:
    """Flagged rows by severity (counted without pandas: it is per request)."""
    counts = collections.Counter(frame["severity"].tolist())
    counts.pop("none", None)
    return dict(counts)


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
    for metric in COUNTED:
        registry.register(metric)
    registry.register(StoredState(vigil))
    return generate_latest(registry)
