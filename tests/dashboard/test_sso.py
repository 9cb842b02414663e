"""Single sign-on: `streamlit run` with an [auth] section pointing at a real OpenID
Connect provider on loopback (the `oidc-provider` npm package, tests/oidc), driven in
headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from app import services
from app.settings import Settings
from app.vigil import Vigil
from tests.conftest import CHROMIUM, require_server
from tests.dashboard.test_browser import ROOT, settle
from tests.smtp import free_port

OIDC = ROOT / "tests" / "oidc"

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # servers in processes


def wait_for(url: str, process: subprocess.Popen) -> None:
    for _ in range(120):
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if process.poll() is not None:
                pytest.fail(f"{process.args[0]} stopped: {process.stdout.read().decode()}")
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer")


@pytest.fixture
def sso_app(tmp_path):
    """The dashboard with single sign-on, the provider, and one account (ana, analyst,
    ana@example.org)."""
    if shutil.which("node") is None or not (OIDC / "node_modules" / "oidc-provider").exists():
        require_server("the test OIDC provider is not installed: npm ci --prefix tests/oidc")
    if not Path(CHROMIUM).exists():
        require_server(f"{CHROMIUM} is missing: apt-get install chromium")
    app_port, op_port = free_port(), free_port()
    app_url, issuer = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{op_port}"
    provider = subprocess.Popen(["node", "provider.js", str(op_port), "test-secret",
                                 f"{app_url}/oauth2callback"], cwd=OIDC,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f"""[auth]
redirect_uri = "{app_url}/oauth2callback"
cookie_secret = "a-test-cookie-secret-of-enough-length"
client_id = "vigil"
client_secret = "test-secret"
server_metadata_url = "{issuer}/.well-known/openid-configuration"
client_kwargs = {{ prompt = "login" }}  # Streamlit's default, select_account, is not
                                       # one this provider (nor every provider) supports
""")
    database = f"sqlite:///{tmp_path / 'vigil.db'}"
    services.add_user(Vigil(Settings(database_url=database)), "ana", role="analyst",
                      password=None, email="ana@example.org")
    env = {**os.environ, "DATABASE_URL": database, "ALERT_OUTBOX_DIR": str(tmp_path / "o"),
           "JOURNAL_DIR": str(tmp_path / "j"), "SMTP_HOST": ""}
    app = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "dashboard" / "server.py"),
         "--server.port", str(app_port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--secrets.files", str(secrets)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(f"{issuer}/.well-known/openid-configuration", provider)
        wait_for(f"{app_url}/_stcore/health", app)
        yield app_url
    finally:
        for process in (app, provider):
            process.terminate()
            process.wait(timeout=20)


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox"])
        yield browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        browser.close()


def sign_in_at_provider(page, app_url: str, login: str) -> None:
    page.goto(app_url)
    page.get_by_role("button", name="Sign in with single sign-on").click()
    page.locator('input[name="login"]').fill(login)  # the provider's own sign-in form
    page.locator('input[name="password"]').fill("anything")
    page.locator('button[type="submit"]').click()
    page.locator('button[type="submit"]', has_text="Continue").click()  # consent
    page.wait_for_url(f"{app_url}/**", timeout=60_000)


def sign_out(page) -> None:
    """Sign out of Vigil and, as st.logout asks, of the provider (it asks to confirm)."""
    settle(page)
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Yes, sign me out").click()
    page.get_by_text("Sign in to Vigil").wait_for(timeout=60_000)


def nav(page) -> list[str]:
    return page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()


def test_single_sign_on_takes_the_accounts_role_or_the_providers_claim(sso_app,
                                                                        browser_page):
    page = browser_page
    sign_in_at_provider(page, sso_app, "ana")  # an account has this e-mail: analyst
    page.get_by_text("Signed in as ana (analyst)").wait_for(timeout=60_000)
    settle(page)
    assert "Analyze" in " ".join(nav(page)) and "Audit" not in " ".join(nav(page))
    page.reload()  # the identity is a cookie: a new session is signed in again
    page.get_by_text("Signed in as ana (analyst)").wait_for(timeout=60_000)
    sign_out(page)

    sign_in_at_provider(page, sso_app, "admin-bob")  # no account; the claim says admin
    page.get_by_text("Signed in as admin-bob@example.org (admin)").wait_for(timeout=60_000)
    settle(page)
    assert "Audit" in " ".join(nav(page))
    sign_out(page)

    sign_in_at_provider(page, sso_app, "eve")  # neither: not let in
    page.get_by_text("eve@example.org has no Vigil account").wait_for(timeout=60_000)
    assert nav(page) == [] or "Overview" not in " ".join(nav(page))
