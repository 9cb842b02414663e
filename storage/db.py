"""Engines, sessions and schema upgrades."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DataError, DBAPIError, IntegrityError, NoSuchModuleError
from sqlalchemy.orm import Session

from storage.errors import DatabaseError, StorageError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
CONNECT_TIMEOUT_S = 5


def _enable_sqlite_foreign_keys(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created when missing.

    Raises
    ------
    StorageError
        The URL cannot be parsed, names a driver that is not installed, or a SQLite
        folder that cannot be created. The message shows the URL without its password.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise StorageError(f"DATABASE_URL is not a database URL ({exc}); expected "
                           "postgresql://user:password@host:5432/name or "
                           "sqlite:///path/to/file.db") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")  # the driver we install
    shown = parsed.render_as_string(hide_password=True)
    try:
        return _engine(parsed)
    except NoSuchModuleError:
        raise StorageError(f"DATABASE_URL {shown}: unknown database {parsed.drivername!r}; "
                           "Vigil stores to PostgreSQL (postgresql://) or SQLite "
                           "(sqlite:///)") from None
    except ImportError as exc:
        raise StorageError(f"DATABASE_URL {shown}: the driver for {parsed.drivername!r} is "
                           f"not installed ({exc.name}); Vigil stores to PostgreSQL or "
                           "SQLite") from None
    except OSError as exc:
        raise StorageError(f"DATABASE_URL {shown}: the folder {exc.filename} cannot be "
                           f"created ({exc.strerror})") from None


def _engine(parsed) -> Engine:
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
        return engine
    if parsed.get_backend_name() != "postgresql":
        return create_engine(parsed, pool_pre_ping=True)
    engine = create_engine(parsed, pool_pre_ping=True,
                           connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    event.listen(engine, "connect", _utc_session)
    return engine


def _utc_session(dbapi_connection, _record) -> None:
    """PostgreSQL sessions in UTC, whatever the server's or the client's (PGTZ) zone:
    days (the overview's anomalies per day) and times read back are UTC's, as SQLite's."""
    cursor = dbapi_connection.cursor()
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    dbapi_connection.commit()


def alembic_config(engine: Engine):
    """Alembic's configuration for ``engine``. Alembic is imported here, on first use:
    it takes a fifth of a second, and a current database never needs it."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    from alembic import command

    with translated():
        command.upgrade(alembic_config(engine), revision)


def head_revision() -> str:
    """The newest migration's revision: each file of ``migrations/versions`` is named
    after its revision (``0010_leases_and_sessions.py`` is ``0010``), numbered in order."""
    return max(path.name.split("_", 1)[0]
               for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def upgrade_if_behind(engine: Engine) -> None:
    """Upgrade unless the database is already at :func:`head_revision` (read with one
    query, without importing Alembic)."""
    try:
        with engine.connect() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # no alembic_version table yet: a new database
        current = None
    if current != head_revision():
        upgrade(engine)


def is_current(engine: Engine) -> bool:
    """True when the database is at the newest migration."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


def is_embedded(engine: Engine) -> bool:
    """SQLite: the app may upgrade it by itself (nobody else shares the file)."""
    return engine.dialect.name == "sqlite"


Bind = Engine | Session  # what repository functions take: a database, or a unit of work


@contextmanager
def transaction(bind: Bind) -> Iterator[Session]:
    """A session that commits at the end of the block, or rolls everything back.

    Given a session (a unit of work the caller opened), the block joins it: the caller
    commits everything at once. A database failure is raised as :class:`DatabaseError`.
    """
    if isinstance(bind, Session):
        yield bind
        return
    with translated(), Session(bind, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def translated() -> Iterator[None]:
    """Driver errors (connection refused, server gone, ...) as :class:`DatabaseError`;
    a value the database refuses (DataError, IntegrityError) is left to the repository
    that stored it to say which (``storage.runs.refused_values``)."""
    try:
        yield
    except (DataError, IntegrityError):
        raise
    except DBAPIError as exc:
        raise DatabaseError(database_error(exc)) from exc


def database_error(exc: DBAPIError) -> str:
    """A database failure in one line, without the SQL or any password."""
    detail = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
    return f"{type(exc.orig).__name__ if exc.orig else 'error'}: {detail}"


def serialize(session: Session, name: str) -> None:
    """Hold a lock named ``name`` until the transaction ends: one transaction at a time
    gets past this point, so a check and the write it allows cannot interleave with
    another's (two "create the administrator" at once make one). PostgreSQL: an advisory
    lock. SQLite: its one write lock, taken now by a write that changes no row (Python's
    sqlite3 would otherwise begin the transaction only at the first real write, after
    the check)."""
    if dialect_name(session) == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        session.execute(text("DELETE FROM alembic_version WHERE 1 = 0"))


def insert_of(bind: Bind):
    """The database's own ``insert`` (PostgreSQL's or SQLite's), which knows
    ``on_conflict_do_nothing``: the way every repository stores a row once."""
    return {"postgresql": postgresql, "sqlite": sqlite}[dialect_name(bind)].insert


def as_utc(moment: datetime | None) -> datetime | None:
    """A stored time as an aware UTC one: SQLite gives back naive datetimes (stored in UTC)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def dialect_name(bind: Bind) -> str:
    return (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name
