"""A sign-in stream: a campaign's rows join one incident across batches, whoever they
are about, and incidents stored apart that a campaign joins become one."""

from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import select

from storage import leases, live
from storage.runs import RunToSave
from storage.schema import Anomaly, Incident

T0 = datetime(2026, 6, 11, 9, 0, tzinfo=UTC)
MAPPING = {"user": "user", "ip": "ip", "success": "ok", "timestamp": "time"}


def batch(rows: list[tuple[int, int, str, str]], total: int) -> RunToSave:
    """Flagged failed sign-ins: (row, minute, user, address)."""
    anomalies = pd.DataFrame({
        "row_number": [r for r, *_ in rows],
        "event_time": [T0 + timedelta(minutes=m) for _, m, *_ in rows],
        "entity": [u for *_, u, _ in rows],
        "anomaly_score": [80.0] * len(rows),
        "severity": ["high"] * len(rows),
        "reasons": ["many failures"] * len(rows),
        "data": [{"user": u, "ip": ip, "ok": "false"} for *_, u, ip in rows],
    })
    return RunToSave(source_name="sign-ins", file_sha256="", profile="login",
                     detector="isolation_forest", model_version="v1", parameters={},
                     threshold=50.0, threshold_note="", total_rows=total, anomalies=anomalies,
                     mapping=MAPPING)


def incidents_of(engine):
    with engine.connect() as conn:
        rows = conn.execute(select(Anomaly.row_number, Anomaly.incident_id)
                            .order_by(Anomaly.row_number)).all()
        found = conn.execute(select(Incident.id, Incident.entity, Incident.row_count,
                                    Incident.summary)).all()
    return dict(rows), {i.id: i for i in found}


def test_a_spray_over_two_batches_is_one_campaign_incident(engine):
    me = leases.Writer.this_process("vigil stream")
    leases.acquire(engine, source="sign-ins", writer=me)
    # Two users, each an incident of their own: no campaign yet (fewer than three).
    first = batch([(1, 0, "u1", "203.0.113.9"), (2, 3, "u2", "203.0.113.9"),
                   (3, 4, "ann", "198.51.100.7")], total=10)
    live.append(engine, source="sign-ins", writer=me, batch=first, start=0, end=10,
                carried=b"")
    rows, found = incidents_of(engine)
    assert len(set(rows.values())) == 3
    # A third and fourth user from the address: the campaign joins the two stored apart.
    second = batch([(11, 6, "u3", "203.0.113.9"), (12, 8, "u4", "203.0.113.9")], total=10)
    live.append(engine, source="sign-ins", writer=me, batch=second, start=10, end=20,
                carried=b"")
    rows, found = incidents_of(engine)
    spray = {rows[r] for r in (1, 2, 11, 12)}
    assert len(spray) == 1 and rows[3] not in spray
    (incident,) = (found[i] for i in spray)
    assert incident.entity == "203.0.113.9" and incident.row_count == 4
    assert incident.summary.startswith("campaign from 203.0.113.9: 4 users (u1, u2, u3 and "
                                       "1 more)")
    assert set(found) == spray | {rows[3]}  # the incident joined in is gone
