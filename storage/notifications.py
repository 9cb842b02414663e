"""Alert notifications: claimed once by a dedupe key, then marked sent or failed.

The alert policy lives in ``alerts``; this module only records what happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine, func, select, update

from storage.db import insert_of, transaction
from storage.errors import StorageError
from storage.schema import NOTIFICATION_STATUSES, AlertNotification

NOTIFICATION_COLUMNS = ("id", "run_id", "dedupe_key", "recipients", "subject", "status",
                        "attempts", "last_error", "created_at", "sent_at", "transport")


def claim_notification(engine: Engine, *, run_id: int, dedupe_key: str, recipients: str,
                       subject: str, anomaly_ids: Sequence[int]) -> tuple[AlertNotification,
                                                                           bool]:
    """Record a digest as ``queued`` unless its dedupe key exists.

    Returns the notification and whether this call created it: only the creator sends,
    so a rerun, a retry or a second click never sends twice.
    """
    insert_row = insert_of(engine)
    statement = (insert_row(AlertNotification)
                 .values(run_id=run_id, dedupe_key=dedupe_key, recipients=recipients,
                         subject=subject, anomaly_ids=list(anomaly_ids), status="queued",
                         attempts=0)
                 .on_conflict_do_nothing(index_elements=["dedupe_key"])
                 .returning(AlertNotification.id))
    with transaction(engine) as session:
        new_id = session.execute(statement).scalar()
        row = session.scalar(select(AlertNotification)
                             .where(AlertNotification.dedupe_key == dedupe_key))
    return row, new_id is not None


def record_attempt(engine: Engine, *, notification_id: int, status: str,
                   error: str | None = None, transport: str | None = None,
                   attempts: int = 1) -> None:
    """Count delivery attempts and set the outcome."""
    if status not in NOTIFICATION_STATUSES:
        raise StorageError(f"notification status must be one of "
                           f"{', '.join(NOTIFICATION_STATUSES)}; got {status!r}")
    values = {"status": status, "last_error": error,
              "attempts": AlertNotification.attempts + attempts}
    if status == "sent":
        values["sent_at"] = datetime.now(UTC)
        values["transport"] = transport
    with transaction(engine) as session:
        session.execute(update(AlertNotification)
                        .where(AlertNotification.id == notification_id).values(**values))


def sent_since(engine: Engine, *, recipients: str, since: datetime) -> int:
    """Digests delivered to this recipient group since ``since`` (for the throttle)."""
    with transaction(engine) as session:
        return session.scalar(select(func.count(AlertNotification.id)).where(
            AlertNotification.recipients == recipients, AlertNotification.status == "sent",
            AlertNotification.sent_at >= since)) or 0


def held_back(engine: Engine, *, recipients: str, exclude_id: int | None = None
              ) -> list[AlertNotification]:
    """Digests of this group still ``queued`` (held by the throttle), oldest first."""
    query = (select(AlertNotification)
             .where(AlertNotification.recipients == recipients,
                    AlertNotification.status == "queued")
             .order_by(AlertNotification.id))
    if exclude_id is not None:
        query = query.where(AlertNotification.id != exclude_id)
    with transaction(engine) as session:
        return list(session.scalars(query))


def notifications(engine: Engine, *, status: str | None = None, run_id: int | None = None,
                  limit: int = 200) -> list[AlertNotification]:
    """The notification log, newest first."""
    query = select(AlertNotification).order_by(AlertNotification.id.desc()).limit(limit)
    if status:
        query = query.where(AlertNotification.status == status)
    if run_id is not None:
        query = query.where(AlertNotification.run_id == run_id)
    with transaction(engine) as session:
        return list(session.scalars(query))


def notifications_frame(engine: Engine, *, limit: int = 200) -> pd.DataFrame:
    rows = notifications(engine, limit=limit)
    return pd.DataFrame([{c: getattr(r, c) for c in NOTIFICATION_COLUMNS} for r in rows],
                        columns=list(NOTIFICATION_COLUMNS))


def set_subject(engine: Engine, *, notification_id: int, subject: str) -> None:
    with transaction(engine) as session:
        session.execute(update(AlertNotification)
                        .where(AlertNotification.id == notification_id)
                        .values(subject=subject))
