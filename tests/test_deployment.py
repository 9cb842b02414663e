"""docker-compose.yml and the Dockerfile, checked as files (CI has no Docker engine)."""

import re
from pathlib import Path

import yaml

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_ports():
    services = compose()["services"]
    assert set(services) == {"db", "adminer", "mail", "app"}
    assert "8080:8080" in services["adminer"]["ports"]
    assert "8501:8501" in services["app"]["ports"]
    assert "8025:8025" in services["mail"]["ports"]


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
    assert command.index("vigil db upgrade") < command.index("streamlit run app/main.py")
    assert "USER vigil" in text
