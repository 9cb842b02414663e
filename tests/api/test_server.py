"""A real `vigil serve` process on loopback (two worker processes), and a real Prometheus server
scraping its /metrics."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app import services
from app.vigil import Vigil
from tests.api.conftest import TEMPERATURE, auth, settings_for
from tests.conftest import require_server

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # servers in processes

BODY = ("\n".join(TEMPERATURE.read_text().splitlines()[:101]) + "\n").encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {seconds} s")


@pytest.fixture
def served(tmp_path):
    """`vigil serve --workers 2` on a free port, with a token and an active model."""
    settings = settings_for(f"sqlite:///{tmp_path / 'vigil.db'}", tmp_path)
    services.add_user(Vigil(settings), "owner", role="analyst", password="a long passphrase")
    token = services.add_token(Vigil(settings), "scraper-test", role="analyst", user="owner")
    services.train(Vigil(settings), services.read_dataset(TEMPERATURE), activate=True)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": settings.database_url,
           "JOURNAL_DIR": str(settings.journal_dir),
           "ALERT_OUTBOX_DIR": str(settings.alert_outbox_dir)}
    server = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port),
                               "--workers", "2"], env=env, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/health")
        yield base, token, port
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def rows_scored(text: str) -> float:
    for line in text.splitlines():
        if line.startswith('vigil_rows_scored_total{profile="sensor"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_served_api_scores_concurrent_bodies_and_counts_them_all(served):
    base, token, _ = served
    headers = {**auth(token), "Content-Type": "text/csv"}
    with httpx.Client(base_url=base, timeout=60) as client:
        assert client.get("/health").json()["models"]["sensor"]
        with ThreadPoolExecutor(8) as posting:  # both worker processes score at once
            answers = list(posting.map(
                lambda _: client.post("/v1/score", content=BODY, headers=headers), range(8)))
        assert [a.status_code for a in answers] == [200] * 8
        assert all(len(a.json()["rows"]) == 100 for a in answers)
        assert answers[0].json()["rows"] == answers[7].json()["rows"]
        assert client.get("/docs").status_code == 200
        assert "/v1/score" in client.get("/openapi.json").json()["paths"]
        assert rows_scored(client.get("/metrics").text) == 800


@pytest.mark.browser
def test_the_docs_page_works_without_internet(served, page):
    """Swagger UI came from a CDN: offline, /docs was a blank page."""
    base, _, _ = served
    outside = []

    def only_the_server(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_server)
    page.goto(f"{base}/docs")
    page.get_by_text("/v1/score", exact=True).first.wait_for(timeout=60_000)
    assert page.get_by_role("heading", name="Vigil").count() >= 1
    assert outside == []


def test_prometheus_scrapes_the_metrics(served, tmp_path):
    binary = shutil.which("prometheus")
    if binary is None:
        require_server("the prometheus server is not installed (apt-get install prometheus)")
    base, token, port = served
    httpx.post(f"{base}/v1/score", content=BODY, timeout=30,
               headers={**auth(token), "Content-Type": "text/csv"}).raise_for_status()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: vigil
    static_configs:
      - targets: ["127.0.0.1:{port}"]
""")
    web = free_port()
    prometheus = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{web}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, found = time.monotonic() + 90, []
        while time.monotonic() < deadline and not found:
            time.sleep(1)
            try:
                answer = httpx.get(f"http://127.0.0.1:{web}/api/v1/query",
                                   params={"query": "vigil_rows_scored_total"}, timeout=5)
            except httpx.TransportError:
                continue
            if answer.status_code == 200:
                found = answer.json()["data"]["result"]
        assert found, "Prometheus never stored vigil_rows_scored_total"
        assert found[0]["metric"]["job"] == "vigil"
        assert found[0]["metric"]["profile"] == "sensor"
        assert float(found[0]["value"][1]) == 100
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
