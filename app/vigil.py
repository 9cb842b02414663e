"""The application object: settings, the database engine, units of work.

Each entry point builds one: the CLI when a command first needs the database, the HTTP
API in ``create_app``, the dashboard once per process (``st.cache_resource``). Use cases
(:mod:`app.services`) take it as their first argument and open a unit of work (one
session, one transaction) for what must be stored together.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.settings import Settings, get_settings
from storage import db

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
                db.upgrade(engine)  # the embedded file is ours alone: keep it current
            _ENGINES[url] = engine
        return _ENGINES[url]


class Vigil:
    """Vigil for one set of settings.

    Parameters
    ----------
    settings : Settings, optional
        Default: read from the environment and ``.env``.
    """

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()

    @property
    def engine(self) -> Engine:
        """The database of ``DATABASE_URL`` (SQLite is upgraded to the newest schema)."""
        return _engine_for(self.settings.database_url)

    @contextmanager
    def unit(self) -> Iterator[Session]:
        """One unit of work: what the block stores commits together, or not at all."""
        with db.transaction(self.engine) as session:
            yield session
