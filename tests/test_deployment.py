"""docker-compose.yml and the Dockerfile, checked as files (CI has no Docker engine)."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app.api import metrics
from app.settings import Settings
from tests.conftest import require_server

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_ports():
    services = compose()["services"]
    assert set(services) == {"db", "adminer", "mail", "app", "api", "prometheus", "grafana",
                             "scheduler", "worker"}
    assert "8080:8080" in services["adminer"]["ports"]
    assert "8501:8501" in services["app"]["ports"]
    assert "8025:8025" in services["mail"]["ports"]
    assert "8000:8000" in services["api"]["ports"]
    assert "9090:9090" in services["prometheus"]["ports"]
    assert "3000:3000" in services["grafana"]["ports"]


@pytest.mark.slow
def test_compose_file_is_valid_for_docker_compose(tmp_path):
    """`docker-compose config` (Debian's docker-compose; CI installs it) parses and
    interpolates the file as `docker compose up` would, with the required secrets set."""
    binary = shutil.which("docker-compose")
    if binary is None:
        require_server("docker-compose is not installed (apt-get install docker-compose)")
    env = {**os.environ, "POSTGRES_PASSWORD": "pw", "GRAFANA_ADMIN_PASSWORD": "pw"}
    done = subprocess.run([binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]
    assert resolved["api"]["environment"]["DATABASE_URL"].endswith("@db:5432/vigil")
    missing = subprocess.run([binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
                             capture_output=True, text=True, cwd=tmp_path,
                             env={**env, "GRAFANA_ADMIN_PASSWORD": ""})
    assert missing.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in missing.stderr


def test_the_api_serves_and_prometheus_and_grafana_are_provisioned():
    services = compose()["services"]
    assert "vigil serve --host 0.0.0.0 --port 8000" in " ".join(services["api"]["command"])
    assert "/health" in " ".join(services["api"]["healthcheck"]["test"])
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    job = scrape["scrape_configs"][0]
    assert job["static_configs"][0]["targets"] == ["api:8000"]
    assert job["metrics_path"] == "/metrics"
    mounts = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    assert "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning" in mounts
    source = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml")
                            .read_text())["datasources"][0]
    assert source["url"] == "http://prometheus:9090" and source["uid"] == "prometheus"
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/vigil.yml")
                              .read_text())["providers"][0]
    assert provider["options"]["path"] in mounts


def test_the_grafana_dashboard_queries_metrics_vigil_exports():
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/vigil.json").read_text())
    exported = {m._name for m in metrics.COUNTED} | {"vigil_model_info",
                                                     "vigil_stream_lag_seconds"}
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "prometheus"
            queried |= set(re.findall(r"vigil_[a-z_]+", target["expr"]))
    base = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in queried}
    assert base <= exported, base - exported
    assert exported <= base  # every metric has a panel


def test_postgres_has_a_healthcheck_and_a_named_volume():
    config = compose()
    db = config["services"]["db"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")[0]
    assert volume in config["volumes"]
    assert config["services"]["app"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_app_is_wired_by_settings_and_no_secret_is_written_down():
    app = compose()["services"]["app"]
    names = {name.lower() for name in app["environment"]}
    assert names <= set(Settings.model_fields)
    assert app["environment"]["SMTP_HOST"] == "mail"
    assert app["environment"]["DATABASE_URL"].startswith("postgresql+psycopg2://")
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text  # required from the environment, never a default
    assert not re.search(r"PASSWORD:\s*[\"']?\w", text.replace("${POSTGRES_PASSWORD", ""))


def test_dockerfile_migrates_then_serves():
    text = (ROOT / "Dockerfile").read_text()
    command = text[text.index("CMD"):]
    assert command.index("vigil db upgrade") < command.index("vigil users bootstrap") \
        < command.index("streamlit run app/dashboard/server.py")
    assert "USER vigil" in text


def test_the_first_start_form_is_the_local_users_and_compose_can_create_the_admin():
    """`make run` listens on loopback only (the create-the-administrator form must not
    be offered to the network); compose passes VIGIL_ADMIN_* to `vigil users bootstrap`."""
    makefile = (ROOT / "Makefile").read_text()
    assert "ADDRESS ?= 127.0.0.1" in makefile
    assert "streamlit run app/dashboard/server.py --server.address $(ADDRESS)" in makefile
    services = compose()["services"]
    for name in ("app", "api"):
        assert {"VIGIL_ADMIN_USER", "VIGIL_ADMIN_PASSWORD"} <= set(services[name]["environment"])
    assert "vigil users bootstrap" in " ".join(services["api"]["command"])


def test_the_suite_reads_neither_a_developers_env_file_nor_their_shell(tmp_path, monkeypatch):
    """With SMTP_HOST in a developer's .env, 8 tests failed and 9 test e-mails went out."""
    import sys

    (tmp_path / ".env").write_text("SMTP_HOST=mail.example.org\nDATABASE_URL=sqlite:///x.db\n")
    monkeypatch.chdir(tmp_path)
    assert Settings().smtp_host is None
    assert "SMTP_HOST" not in os.environ
    child = subprocess.run([sys.executable, "-c", "from app.settings import Settings; "
                            "print(Settings().smtp_host)"], capture_output=True, text=True,
                           cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout.strip() == "None", child.stderr


def test_make_demo_and_make_run_listen_on_different_ports():
    """Both took 8501: the second one started failed, or showed the other's page."""
    def planned(target: str) -> str:
        """The commands `make` would run, continuation lines joined."""
        done = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True,
                              text=True, check=True)
        return done.stdout.replace("\\\n", " ")

    run, demo = planned("run"), planned("demo")
    assert "streamlit run" in run and "--server.port" not in run  # Streamlit's own 8501
    assert re.search(r"streamlit run .*--server\.port 8502\b", demo)
    assert "http://localhost:8502/live" in demo


def test_a_dask_scheduler_and_two_workers_serve_the_app_and_api():
    """`--engine dask` in compose: the app and API name the scheduler; two workers with
    Vigil's requirements (its image) reach the same database and datasets."""
    services = compose()["services"]
    requirements = (ROOT / "requirements.txt").read_text()
    pinned = re.search(r"^dask\[distributed\]==(\S+)$", requirements, re.M).group(1)
    assert services["scheduler"]["image"] == f"ghcr.io/dask/dask:{pinned}-py3.11"
    assert "8787:8787" in services["scheduler"]["ports"]
    worker = services["worker"]
    assert worker["build"] == "." and worker["deploy"]["replicas"] == 2
    assert worker["command"][:3] == ["dask", "worker", "tcp://scheduler:8786"]
    for name in ("app", "api"):
        assert services[name]["environment"]["DASK_SCHEDULER"] == "tcp://scheduler:8786"
        assert services[name]["volumes"] == worker["volumes"]
    assert worker["environment"]["DATABASE_URL"] == services["api"]["environment"]["DATABASE_URL"]
    assert "./datasets:/data/datasets:ro" in worker["volumes"]
