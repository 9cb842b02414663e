"""The audit log: who did what, when, to what, with the state before and after."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import select

from storage.db import Bind, transaction
from storage.schema import AuditEvent
from storage.text import NAME_CHARS, clean, json_safe

COLUMNS = ("id", "at", "actor", "action", "target", "before", "after")


def record(bind: Bind, *, actor: str, action: str, target: str, before: dict | None = None,
           after: dict | None = None) -> None:
    """Add an event (in the caller's unit of work when given a session: the event is
    stored with what it records, or not at all)."""
    def safe(state):
        return None if state is None else {clean(str(k)): json_safe(v) for k, v in state.items()}

    with transaction(bind) as session:
        session.add(AuditEvent(at=datetime.now(UTC), actor=clean(actor, NAME_CHARS),
                               action=action, target=clean(target, NAME_CHARS),
                               before=safe(before), after=safe(after)))


def events(bind: Bind, *, limit: int = 500, actor: str | None = None,
           action: str | None = None) -> pd.DataFrame:
    """The newest events first."""
    query = select(*[getattr(AuditEvent, c) for c in COLUMNS]).order_by(
        AuditEvent.id.desc()).limit(limit)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action == action)
    with transaction(bind) as session:
        rows = session.execute(query).all()
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame
