"""Alert routing set on the Alerts page (table ``alert_routes``): each row overrides its
environment setting."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from storage.db import Bind, insert_of, transaction
from storage.schema import AlertRoute
from storage.text import NAME_CHARS, clean

KEYS = ("to_security", "to_maintenance", "min_severity")


def routes(bind: Bind) -> dict[str, str]:
    """The keys set on the Alerts page, with their values."""
    with transaction(bind) as session:
        return dict(session.execute(select(AlertRoute.key, AlertRoute.value)).all())


def set_routes(bind: Bind, values: dict[str, str], *, actor: str) -> None:
    """Store ``values`` (keys of :data:`KEYS`), replacing what was set before."""
    with transaction(bind) as session:
        statement = insert_of(session)(AlertRoute)
        for key, value in values.items():
            row = {"key": key, "value": value, "updated_by": clean(actor, NAME_CHARS),
                   "updated_at": datetime.now(UTC)}
            session.execute(statement.values(**row).on_conflict_do_update(
                index_elements=["key"], set_={k: row[k] for k in row if k != "key"}))
