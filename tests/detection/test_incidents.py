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


def sign_ins(rows: list[tuple[int, str, str, bool]]) -> pd.DataFrame:
    """Flagged sign-ins: (minute, user, address, succeeded)."""
    frame = flagged([m for m, *_ in rows], [u for _, u, *_ in rows],
                    reasons=["unusual hour"] * len(rows))
    frame["data"] = [{"user": u, "ip": ip, "ok": "true" if ok else "false"}
                     for _, u, ip, ok in rows]
    return frame


MAPPING = {"user": "user", "ip": "ip", "success": "ok"}


def test_a_spray_across_users_is_one_campaign_that_names_and_counts_them():
    rows = [(m, f"u{m}", "203.0.113.9", False) for m in range(0, 50, 5)]  # 10 users
    rows += [(52, "u45", "203.0.113.9", True),   # the success that follows
             (20, "alice", "198.51.100.7", False)]  # someone else, elsewhere
    frame = sign_ins(rows)
    sources = incidents.login_sources(frame, MAPPING)
    numbers = incidents.group(frame, GAP, sources)
    assert len(set(numbers[:11])) == 1 and numbers[11] != numbers[0]
    found = incidents.summarize(frame, numbers, sources).set_index("number")
    campaign = found.loc[numbers[0]]
    assert campaign["entity"] == "203.0.113.9" and campaign["row_count"] == 11
    assert campaign["summary"].startswith(
        "campaign from 203.0.113.9: 10 users (u0, u5, u10 and 7 more); unusual hour")
    assert found.loc[numbers[11]]["entity"] == "alice"
    # Without the sources, each user is an incident of their own, as before.
    assert len(set(incidents.group(frame, GAP))) == 11


def test_a_shared_office_address_or_a_long_pause_is_no_campaign():
    # Two users flagged for other reasons behind one address: fewer than three failing.
    office = sign_ins([(0, "ann", "192.0.2.1", True), (5, "bob", "192.0.2.1", False),
                       (9, "cat", "192.0.2.1", True)])
    numbers = incidents.group(office, GAP, incidents.login_sources(office, MAPPING))
    assert len(set(numbers)) == 3
    # Three failing users from one address, but hours apart: separate events.
    apart = sign_ins([(0, "ann", "192.0.2.1", False), (120, "bob", "192.0.2.1", False),
                      (240, "cat", "192.0.2.1", False)])
    numbers = incidents.group(apart, GAP, incidents.login_sources(apart, MAPPING))
    assert len(set(numbers)) == 3
    # A network of many addresses is one source too (a /24 of a botnet's hosts).
    subnet = sign_ins([(i, f"u{i}", f"198.51.100.{i + 1}", False) for i in range(4)])
    sources = incidents.login_sources(subnet, MAPPING)
    numbers = incidents.group(subnet, GAP, sources)
    assert len(set(numbers)) == 1
    assert incidents.summarize(subnet, numbers, sources)["entity"].tolist() == [
        "198.51.100.0/24"]
