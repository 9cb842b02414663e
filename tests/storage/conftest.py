from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from storage.runs import RunToSave

SEVERITY_BY_SCORE = ((95, "critical"), (85, "high"), (70, "medium"), (50, "low"))


def severity_of(score: float) -> str:
    return next(name for bound, name in SEVERITY_BY_SCORE if score >= bound)


def make_run(n: int = 10, *, file_sha256: str = "f" * 64, parameters: dict | None = None,
             source_name: str = "readings.csv", profile: str = "sensor") -> RunToSave:
    """A run of ``n`` flagged rows with known times, entities, scores and reasons."""
    start = datetime(2025, 6, 1, tzinfo=UTC)
    scores = [51 + (i * 47 / max(n - 1, 1)) for i in range(n)]
    anomalies = pd.DataFrame({
        "row_number": range(1, n + 1),
        "event_time": [start + timedelta(hours=i) for i in range(n)],
        "entity": [f"elevator-{i % 3}" for i in range(n)],
        "anomaly_score": scores,
        "severity": [severity_of(s) for s in scores],
        "reasons": ["vibration 68.2, usual 20.1 ± 3.0 at 14:00" if i % 2 else
                    "humidity 91.0, usual 40.0 ± 5.0" for i in range(n)],
        "data": [{"timestamp": f"2025-06-01 {i % 24:02d}:00", "vibration": 60.0 + i,
                  "note": "=cmd()" if i == 0 else None} for i in range(n)],
    })
    return RunToSave(
        source_name=source_name, file_sha256=file_sha256, profile=profile,
        detector="isolation_forest", model_version=None,
        parameters=parameters or {"contamination": 0.015}, threshold=50.0,
        threshold_note="Rows scoring above 50 are flagged.", total_rows=n * 50,
        anomalies=anomalies, entity_column="elevator_id", time_column="timestamp",
        warnings=["column 'x': 2 missing value(s) imputed"], chart_data=b"parquet",
        score_histogram=[[10.0, n * 49], [60.0, n]],
    )


@pytest.fixture
def run() -> RunToSave:
    return make_run()
