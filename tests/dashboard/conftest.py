from __future__ import annotations

import functools
import re
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from app.settings import get_settings

MAIN = Path(__file__).resolve().parents[2] / "app" / "dashboard" / "main.py"


@pytest.fixture(autouse=True, scope="session")
def components_scanned_once():
    """Each AppTest run starts a Streamlit runtime, which reads the metadata of every
    installed package (about 330 here) for components: 0.28 s of a core a test, 16 s of
    the fast suite, for an answer that cannot change while the tests run. Scanned once
    per test process here, as the dashboard's server scans once at start."""
    from streamlit.components.v2 import manifest_scanner

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(manifest_scanner, "scan_component_manifests",
                      functools.cache(manifest_scanner.scan_component_manifests))
        yield


@pytest.fixture
def dashboard_env(tmp_path, monkeypatch, database_url):
    """The app's settings, pointing at a test database and outbox."""
    values = {"DATABASE_URL": database_url, "ALERT_OUTBOX_DIR": str(tmp_path / "outbox"),
              "JOURNAL_DIR": str(tmp_path / "fallback"), "ALERT_TO_SECURITY": "soc@x.org",
              "ALERT_TO_MAINTENANCE": "ops@x.org", "SMTP_HOST": "",
              "SMTP_PASSWORD": "Pw-never-shown"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def open_page(page: str | None = None, at: AppTest | None = None) -> AppTest:
    """Run the app (and switch to ``views/<page>.py``); fails on any exception."""
    if at is None:
        at = AppTest.from_file(str(MAIN), default_timeout=180)
        sign_in(at, role="admin")
        at.run()
    if page:
        at.switch_page(f"views/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def sign_in(at: AppTest, *, role: str, name: str | None = None) -> AppTest:
    """The session signed in (as the sign-in page leaves it) with ``role``: the user
    exists (made here when missing) and holds a server-side session."""
    from app import services
    from app.dashboard.ui import SIGNED_IN
    from app.vigil import Vigil
    from storage import users

    vigil = Vigil(get_settings())
    actor = services.Actor(name or f"{role}-tester", role)
    if actor.name not in set(users.listed(vigil.engine)["name"]):
        users.add(vigil.engine, name=actor.name, role=role, password=None)
    at.session_state[SIGNED_IN] = {"session": services.open_session(vigil, actor)}
    return at


def shown(elements) -> list[str]:
    """What the browser displays for markdown elements: untrusted text is sent
    backslash-escaped (app.text.markdown), and shows without the backslashes."""
    return [re.sub(r"\\(.)", r"\1", str(e.value)) for e in elements]


def chart_payload(at: AppTest) -> list[tuple[int, int]]:
    """(rows, bytes) of data each chart on the page sends to the browser."""
    payload = []
    for chart in at.get("vega_lite_chart"):
        blobs = [d.data.data for d in chart.proto.datasets]
        if chart.proto.data.data:
            blobs.append(chart.proto.data.data)
        rows = sum(pa.ipc.open_stream(blob).read_all().num_rows for blob in blobs)
        payload.append((rows, len(chart.proto.spec) + sum(len(b) for b in blobs)))
    return payload
