"""The real thing: `streamlit run` on loopback, driven by headless Chromium (Playwright)."""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from sample_data import sample_path
from tests.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"  # ignored by git
PAGES = ["overview", "analyze", "explore", "live", "alerts", "models"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # servers in processes


@pytest.fixture
def app_url(tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'vigil.db'}",
           "ALERT_OUTBOX_DIR": str(tmp_path / "outbox"), "JOURNAL_DIR": str(tmp_path / "j"),
           "ALERT_TO_SECURITY": "soc@x.org", "ALERT_TO_MAINTENANCE": "ops@x.org",
           "SMTP_HOST": "",
           "DASHBOARD_URL": f"http://127.0.0.1:{port}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "dashboard" / "server.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not start: " + server.stdout.read1().decode())
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def settle(page) -> None:
    """Wait until Streamlit has finished running the script."""
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached",
                           timeout=120_000)
    page.wait_for_timeout(300)


def go_to(page, title: str) -> None:
    """Open the page ``title`` from the sidebar, once its address is the page's (the
    script may not have begun to run when the click returns: settling then was no wait,
    and a reload right after reloaded the page before)."""
    link = page.locator('[data-testid="stSidebarNav"] a', has_text=title)
    address = link.get_attribute("href")
    link.click()
    page.wait_for_url(address, timeout=60_000)
    settle(page)


def create_admin_and_sign_in(page, app_url) -> None:
    """A fresh database: the first start's form creates the administrator and signs in
    (the browser then keeps the session in its cookie)."""
    page.goto(app_url)
    page.get_by_text("Create the administrator").wait_for(timeout=60_000)
    page.get_by_role("textbox", name="Name", exact=True).fill("ada")
    page.get_by_label("Password (12 characters or more)").fill("correct horse battery")
    page.get_by_label("Password again").fill("correct horse battery")
    page.get_by_role("button", name="Create and sign in").click()
    page.get_by_text("Signed in as").wait_for(timeout=60_000)
    settle(page)


def test_sign_in_sign_out_and_a_wrong_password_in_a_real_browser(app_url, page):
    create_admin_and_sign_in(page, app_url)
    assert "Deploy" not in page.inner_text("body")  # the toolbar is in viewer mode
    assert page.locator('[data-testid="stSidebarNav"] a', has_text="Audit").count() == 1
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("Sign in to Vigil").wait_for(timeout=30_000)
    assert page.locator('[data-testid="stSidebarNav"] a', has_text="Analyze").count() == 0
    page.get_by_role("textbox", name="Name", exact=True).fill("ada")
    page.get_by_role("textbox", name="Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("The name or password is wrong").wait_for(timeout=30_000)
    page.get_by_role("textbox", name="Password", exact=True).fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for(timeout=30_000)
    go_to(page, "Audit")
    # ada's creation, her sign-out, the refused sign-in and the sign-in
    page.get_by_text("The newest 4 events first").wait_for(timeout=30_000)
    # A URL the signed-out navigation does not offer shows the sign-in page instead (a
    # browser without the session's cookie).
    signed_out = page.context.browser.new_context().new_page()
    signed_out.goto(f"{app_url}/analyze")
    signed_out.get_by_text("Sign in to Vigil").wait_for(timeout=30_000)
    assert "Run detection" not in signed_out.inner_text("body")


def session_cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == "vigil_session"), None)


def test_a_reload_keeps_the_session_and_sign_out_or_disable_end_it(app_url, page, tmp_path):
    """A reload signed the user out. The session now lives in an HttpOnly, SameSite
    cookie bound to the server-side record that sign-out and disabling end."""
    from app import services
    from app.settings import Settings
    from app.vigil import Actor, Vigil

    create_admin_and_sign_in(page, app_url)
    cookie = session_cookie(page.context)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find("vigil_session") == -1  # not for scripts
    go_to(page, "Audit")
    page.reload()
    settle(page)
    page.get_by_text("Signed in as").wait_for(timeout=60_000)
    assert page.url == f"{app_url}/audit" and "Sign in to Vigil" not in page.inner_text("body")

    # A copy of the cookie in another browser works while the session lasts...
    copy = page.context.browser.new_context()
    copy.add_cookies([cookie])
    other = copy.new_page()
    other.goto(f"{app_url}/explore")
    other.get_by_text("Signed in as").wait_for(timeout=60_000)
    # ...and not after sign-out: the record ended, and the browser forgot its cookie.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("Sign in to Vigil").wait_for(timeout=30_000)
    assert session_cookie(page.context) is None
    other.goto(f"{app_url}/explore")
    other.get_by_text("Sign in to Vigil").wait_for(timeout=60_000)
    settle(other)
    assert "Signed in as" not in other.inner_text("body")

    # Disabling a user ends their session: their next reload is the sign-in page.
    vigil = Vigil(Settings(database_url=f"sqlite:///{tmp_path / 'vigil.db'}"),
                  actor=Actor("ada", "admin"))
    services.add_user(vigil, "bob", role="analyst", password="another long passphrase")
    page.get_by_role("textbox", name="Name", exact=True).fill("bob")
    page.get_by_role("textbox", name="Password", exact=True).fill("another long passphrase")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for(timeout=30_000)
    page.reload()
    page.get_by_text("Signed in as").wait_for(timeout=60_000)
    services.disable_user(vigil, "bob")
    page.reload()
    page.get_by_text("Sign in to Vigil").wait_for(timeout=60_000)
    copy.close()


def test_upload_score_save_explore_in_a_real_browser(app_url, page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    create_admin_and_sign_in(page, app_url)
    go_to(page, "Analyze")
    page.get_by_text("Upload a CSV").click()
    page.locator('input[type="file"]').set_input_files(str(sample_path("logins.csv")))
    page.get_by_role("button", name="Run detection").click()
    page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=120_000)
    page.wait_for_selector('[data-testid="stDataFrame"]', timeout=60_000)
    settle(page)
    assert "Rows scored" in page.content()
    page.get_by_role("button", name="Save run").click()
    page.get_by_text("Stored as run 1.").wait_for(timeout=60_000)
    page.screenshot(path=SCREENSHOTS / "analyze.png", full_page=True)

    for name in ["explore", "overview", "live", "alerts", "models"]:
        page.locator('[data-testid="stSidebarNav"] a', has_text=name.capitalize()).click()
        path = "" if name == "overview" else name  # the default page lives at /
        expect(page).to_have_url(re.compile(rf":\d+/{path}(\?.*)?$"), timeout=30_000)
        settle(page)
        assert page.locator('[data-testid="stException"]').count() == 0, name
        if name in ("explore", "overview"):
            page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=60_000)
            settle(page)
        page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    assert {p.stem for p in SCREENSHOTS.glob("*.png")} >= set(PAGES)


@pytest.fixture
def beacon():
    """An HTTP server on loopback that records every path a browser asks it for."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def test_markdown_in_file_names_and_headers_is_shown_as_text(app_url, page, beacon, tmp_path):
    """A file name and a column header written as markdown images must not make the
    browser fetch anything, and must read as the text they are."""
    beacon_url, hits = beacon
    header = f"![b]({beacon_url}/header.png)"
    rows = "".join(f"2025-01-0{1 + i // 24} {i % 24:02d}:00,{5 if i != 30 else 500},1\n"
                   for i in range(48 * 2))
    upload = tmp_path / "![x](name.png) **bold** :red[red].csv"
    upload.write_text(f'timestamp,value,"{header}"\n{rows}')
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    create_admin_and_sign_in(page, app_url)
    go_to(page, "Analyze")
    page.get_by_text("Upload a CSV").click()
    page.locator('input[type="file"]').set_input_files(str(upload))
    page.get_by_text(f"constant column(s) '{header}' ignored").wait_for(timeout=60_000)
    page.get_by_role("button", name="Run detection").click()
    page.get_by_role("button", name="Save run").click()
    page.get_by_role("button", name="Send alert").click()
    page.get_by_text("in ![x](name.png) **bold** :red[red].csv").first.wait_for(timeout=60_000)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Alerts").click()
    page.get_by_text("Subject:").wait_for(timeout=60_000)
    settle(page)
    assert "![x](name.png) **bold** :red[red].csv" in page.inner_text("body")

    assert hits == []
    assert [url for url in requested if url.endswith(("/name.png", "/header.png"))] == []
    assert page.locator('[data-testid="stMarkdownContainer"] img').count() == 0


def test_a_digest_link_opened_signed_out_lands_on_its_run_after_sign_in(app_url, page,
                                                                        tmp_path):
    """It showed "Page not found" over the sign-in form and landed on Overview."""
    from app import services
    from app.settings import Settings
    from app.vigil import Vigil

    create_admin_and_sign_in(page, app_url)
    vigil = Vigil(Settings(database_url=f"sqlite:///{tmp_path / 'vigil.db'}",
                           dashboard_url=app_url, alert_outbox_dir=tmp_path / "outbox"))
    stored = {}
    for name in ("temperature.csv", "elevators.csv"):  # the run linked is not the newest
        dataset = services.read_dataset(sample_path(name))
        stored[name] = services.save(vigil, services.analyze(vigil, dataset), source_name=name,
                                     file_sha256=services.file_sha256(sample_path(name))).run_id
    _, html = services.preview_digest(vigil, stored["temperature.csv"])
    link = re.search(r'href="([^"]*/explore\?run=\d+)"', html).group(1)
    assert link == f"{app_url}/explore?run={stored['temperature.csv']}"

    signed_out = page.context.browser.new_context().new_page()  # no session yet
    signed_out.goto(link)
    signed_out.get_by_text("Sign in to Vigil").wait_for(timeout=60_000)
    settle(signed_out)
    assert "Page not found" not in signed_out.inner_text("body")
    signed_out.get_by_role("textbox", name="Name", exact=True).fill("ada")
    signed_out.get_by_role("textbox", name="Password", exact=True).fill("correct horse battery")
    signed_out.get_by_role("button", name="Sign in").click()
    signed_out.get_by_role("heading", name="Explore").wait_for(timeout=60_000)
    settle(signed_out)
    assert signed_out.url == link
    chosen = signed_out.locator('[data-testid="stMultiSelect"]', has_text="Runs").inner_text()
    assert f"#{stored['temperature.csv']} · temperature.csv" in chosen
    assert "elevators.csv" not in chosen
