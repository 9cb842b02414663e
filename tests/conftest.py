from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage import db
from storage.schema import Base

pytest_plugins = ["tests.smtp"]


def _isolate_from_the_developers_settings() -> None:
    """Tests set what they need: neither a developer's `.env` nor their shell's settings
    (SMTP_HOST would send the tests' e-mails to a real server) may reach them, nor the
    processes they start. Runs before any test imports the app."""
    os.environ["VIGIL_ENV_FILE"] = os.devnull
    from app.settings import Settings

    for name in Settings.model_fields:
        os.environ.pop(name.upper(), None)


_isolate_from_the_developers_settings()


@pytest.fixture(autouse=True, scope="session")
def quick_password_hashes():
    """Passwords hashed in the tests' own process use argon2id at a small cost (8 MiB,
    two passes, one lane: about 10 ms) instead of the deployed RFC 9106 parameters
    (64 MiB, four lanes: 0.15 s of both cores), which the suite's hundred hashes paid
    for nothing. Processes the tests start (the dashboard's server, `vigil serve`) hash
    as deployed; the fixture's value is the deployed hasher, for the test of its
    parameters."""
    from argon2 import PasswordHasher

    from storage import users

    deployed = users.PASSWORDS
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "PASSWORDS", PasswordHasher(time_cost=2, memory_cost=8192,
                                                         parallelism=1))
        yield deployed


def sensor_frame(n: int = 600, seed: int = 0, freq: str = "10min") -> pd.DataFrame:
    """A clean daily-cycle series of two metrics, no anomalies."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2025-01-01", periods=n, freq=freq)
    hour = times.hour.to_numpy()
    return pd.DataFrame({
        "timestamp": times.strftime("%Y-%m-%d %H:%M:%S"),
        "temperature": 20 + 3 * np.sin(2 * np.pi * hour / 24) + rng.normal(0, 0.3, n),
        "vibration": 10 + rng.normal(0, 0.5, n),
    })


def to_csv_bytes(frame: pd.DataFrame, sep: str = ",") -> bytes:
    return frame.to_csv(index=False, sep=sep).encode()


@pytest.fixture
def sensor_csv() -> bytes:
    return to_csv_bytes(sensor_frame())


# -- databases ---------------------------------------------------------------------
# Storage tests run on SQLite and on a real PostgreSQL. TEST_DATABASE_URL names a server
# (any database on it); the suite creates a fresh database there and drops it at the end.
# Outside CI a missing server skips the PostgreSQL cases and says why; under CI=true
# they fail instead.

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_server(reason: str) -> None:
    """Skip outside CI, fail under CI: a test that needs a missing server."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a fresh PostgreSQL database for this test session, migrated to head."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        require_server("TEST_DATABASE_URL is not set: no PostgreSQL server to test against")
    admin = db.make_engine(server)
    name = f"vigil_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure means no server to test on
        require_server(f"PostgreSQL at TEST_DATABASE_URL is unusable: {exc}")
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _empty_tables(engine) -> None:
    with engine.begin() as conn:
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A SQLite file migrated to head once a session (per test worker): each test's
    database is a copy of it (running the migrations again cost 0.3-0.6 s a test)."""
    path = tmp_path_factory.mktemp("migrated") / "vigil.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    return path


def sqlite_copy(migrated: Path, folder: Path) -> str:
    """The URL of a fresh copy, in ``folder``, of the session's migrated SQLite file."""
    path = folder / "vigil.db"
    shutil.copyfile(migrated, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A migrated, empty database: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        yield sqlite_copy(request.getfixturevalue("migrated_sqlite"), tmp_path)
        return
    url = request.getfixturevalue("postgres_url")
    engine = db.make_engine(url)
    _empty_tables(engine)
    engine.dispose()
    yield url


# -- a browser ---------------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def page():
    """A page of headless Chromium (Debian's; Playwright drives it)."""
    if not Path(CHROMIUM).exists():
        require_server(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only with chromium

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context.new_page()
        browser.close()


@pytest.fixture
def engine(database_url):
    engine = db.make_engine(database_url)
    yield engine
    engine.dispose()
