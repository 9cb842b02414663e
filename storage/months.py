"""The monthly partitions of ``anomalies`` on PostgreSQL (migration 0014).

A run's flagged rows carry the month the run was stored (``run_created_at``); each month
is a partition in the schema ``anomaly_months``, made before its first run is stored and
dropped whole when a prune takes every run of it (storage.retention).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from storage.db import serialize, transaction

SCHEMA = "anomaly_months"


def name(moment: datetime) -> str:
    return f"anomalies_{moment.astimezone(UTC):%Y_%m}"


def start(moment: datetime) -> datetime:
    """The first instant of ``moment``'s month, in UTC."""
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def end(moment: datetime) -> datetime:
    """The first instant of the next month, in UTC."""
    first = start(moment)
    return first.replace(year=first.year + 1, month=1) if first.month == 12 \
        else first.replace(month=first.month + 1)


def ensure(session: Session, moment: datetime) -> None:
    """The partition for ``moment``'s month, made if missing (PostgreSQL; nothing to do
    on SQLite). Made under a lock, so two first runs of a month do not both make it."""
    if session.get_bind().dialect.name != "postgresql":
        return
    qualified = f"{SCHEMA}.{name(moment)}"
    if session.scalar(text("SELECT to_regclass(:name)"), {"name": qualified}) is None:
        serialize(session, "anomaly-months")
        session.execute(text(f"CREATE TABLE IF NOT EXISTS {qualified} PARTITION OF anomalies "
                             f"FOR VALUES FROM ('{start(moment).isoformat()}') "
                             f"TO ('{end(moment).isoformat()}')"))


def prepare(engine: Engine) -> datetime:
    """Now, the ``created_at`` of a run about to be stored, with its month's partition
    made in a transaction of its own. Making a partition locks ``incidents`` (the foreign
    key) against writes: made inside the save, after its incidents were written, the
    first saves of a month at once (a cluster run's partitions, two uploads) each waited
    for the other, and PostgreSQL ended one as a deadlock."""
    now = datetime.now(UTC)
    if engine.dialect.name == "postgresql":
        with transaction(engine) as session:
            ensure(session, now)
    return now
