"""Grouping flagged rows into incidents: per entity, within a gap, in time order."""

import numpy as np
import pandas as pd
import pytest

from detection import incidents

GAP = pd.Timedelta(minutes=30)
T0 = pd.Timestamp("2025-06-01 08:00", tz="UTC")


def flagged(minutes, entities=None, rows=None, scores=None, reasons=None, times=True):
    n = len(minutes)
    return pd.DataFrame({
        "row_number": rows or list(range(1, n + 1)),
        "event_time": [T0 + pd.Timedelta(minutes=m) for m in minutes] if times else [None] * n,
        "entity": entities or ["e1"] * n,
        "anomaly_score": scores or [60.0] * n,
        "severity": ["low"] * n,
        "reasons": reasons or ["humidity 68.2, usual 41.8 ± 1.4; step 9"] * n,
    })


@pytest.mark.parametrize(("minutes", "entities", "expected"), [
    ([0, 10, 20], None, [0, 0, 0]),                       # each within the gap of the last
    ([0, 30, 60, 90], None, [0, 0, 0, 0]),                # exactly the gap still joins
    ([0, 31], None, [0, 1]),                              # just past it starts a new one
    ([0, 20, 40, 100], None, [0, 0, 0, 1]),               # chained, then a break
    ([0, 5, 10], ["a", "b", "a"], [0, 1, 0]),             # per entity, never across
    ([40, 0, 20], None, [0, 0, 0]),                       # file order does not matter
    ([0, 0], ["a", "a"], [0, 0]),                         # same minute
    ([0, 200, 5], [None, None, "x"], [0, 1, 2]),          # no entity: the file is one
])
def test_grouping(minutes, entities, expected):
    assert incidents.group(flagged(minutes, entities), GAP).tolist() == expected


def test_without_timestamps_rows_close_in_the_file_join():
    rows = [3, 5, 8, 20, 21]
    numbers = incidents.group(flagged([0] * 5, rows=rows, times=False), GAP)
    assert numbers.tolist() == [0, 0, 0, 1, 1]
    summary = incidents.summarize(flagged([0] * 5, rows=rows, times=False), numbers)
    assert summary["summary"].tolist()[0].endswith("(3 rows, rows 3-8)")


def test_an_empty_run_has_no_incidents():
    empty = flagged([])
    assert incidents.group(empty, GAP).size == 0
    assert incidents.summarize(empty, np.zeros(0, dtype="int64")).empty


def test_summary_names_the_peak_its_extent_and_the_highest_severity():
    frame = flagged([0, 10, 25], scores=[55.0, 97.0, 80.0],
                    reasons=["step 3", "humidity 68.2, usual 41.8 ± 1.4; step 9", "x"])
    frame["severity"] = ["low", "critical", "medium"]
    (incident,) = incidents.summarize(frame, incidents.group(frame, GAP)).itertuples()
    assert incident.row_count == 3 and incident.peak_score == 97.0
    assert incident.severity == "critical"
    assert incident.started_at == T0 and incident.ended_at == T0 + pd.Timedelta(minutes=25)
    assert incident.summary == "humidity 68.2, usual 41.8 ± 1.4 (3 rows over 25 min)"
