"""The application object: settings, the database engine, units of work.

Each entry point builds one: the CLI when a command first needs the database, the HTTP
API in ``create_app``, the dashboard once per process (``st.cache_resource``). Use cases
(:mod:`app.services`) take it as their first argument and open a unit of work (one
session, one transaction) for what must be stored together.
"""

from __future__ import annotations

import getpass
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.errors import NotAllowedError
from app.settings import Settings, get_settings
from storage import db
from storage.schema import ROLES

_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _engine_for(url: str) -> Engine:
    """One engine (one connection pool) per database and process, however many
    application objects there are; an embedded SQLite file is upgraded on first use.
    One thread at a time: Alembic's upgrade is not thread-safe (its ``context`` is one
    global), and the API's first requests may all arrive at once."""
    with _ENGINES_LOCK:
        if url not in _ENGINES:
            engine = db.make_engine(url)
            if db.is_embedded(engine):
                db.upgrade_if_behind(engine)  # the embedded file is ours alone: keep it current
            _ENGINES[url] = engine
        return _ENGINES[url]


@dataclass(frozen=True)
class Actor:
    """Who a use case acts for: a signed-in user, an API token, the local operator."""

    name: str
    role: str  # viewer < analyst < admin

    def may(self, role: str) -> bool:
        return self.role in ROLES and ROLES.index(self.role) >= ROLES.index(role)


def operator() -> Actor:
    """Whoever runs `vigil` on the machine: they can read the database URL and the
    model files anyway, so the command line acts with every right."""
    return Actor(f"cli:{getpass.getuser()}", "admin")


class Vigil:
    """Vigil for one set of settings, acting for one actor.

    Parameters
    ----------
    settings : Settings, optional
        Default: read from the environment and ``.env``.
    actor : Actor, optional
        Default: the local operator (:func:`operator`). The dashboard acts as the
        signed-in user, the HTTP API as the token's holder (:meth:`acting_as`).
    """

    def __init__(self, settings: Settings | None = None, actor: Actor | None = None):
        self.settings = settings or get_settings()
        self.actor = actor or operator()

    def acting_as(self, actor: Actor) -> Vigil:
        """The same application (settings, engine) acting for ``actor``."""
        return Vigil(self.settings, actor)

    def require(self, role: str) -> Actor:
        """The actor, when their role includes ``role``; else :class:`NotAllowedError`.
        Use cases check this themselves: a page that forgot to hide a button, or a
        crafted request, is refused all the same."""
        if not self.actor.may(role):
            raise NotAllowedError(f"{self.actor.name} ({self.actor.role}) may not do this: "
                                  f"it needs the {role} role")
        return self.actor

    @property
    def engine(self) -> Engine:
        """The database of ``DATABASE_URL`` (SQLite is upgraded to the newest schema)."""
        return _engine_for(self.settings.database_url)

    @contextmanager
    def unit(self) -> Iterator[Session]:
        """One unit of work: what the block stores commits together, or not at all."""
        with db.transaction(self.engine) as session:
            yield session
