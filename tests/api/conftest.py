"""The HTTP API against a real database, through httpx (FastAPI's TestClient)."""

import pytest
from fastapi.testclient import TestClient

from app import services
from app.api.server import create_app
from app.settings import Settings
from app.vigil import Vigil
from sample_data import sample_path

TEMPERATURE = sample_path("temperature.csv")


def settings_for(url: str, tmp_path, **extra) -> Settings:
    return Settings(database_url=url, journal_dir=tmp_path / "journal",
                    alert_outbox_dir=tmp_path / "outbox", alert_to_maintenance="ops@example.com",
                    alert_to_security="soc@example.com", alert_min_severity="low", **extra)


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    return settings_for(database_url, tmp_path)


@pytest.fixture
def tokens(settings) -> dict[str, str]:
    """A token of each role, belonging to an administrator."""
    vigil = Vigil(settings)
    services.add_user(vigil, "owner", role="admin", password="a long passphrase")
    return {role: services.add_token(vigil, f"{role}-job", role=role, user="owner")
            for role in ("viewer", "analyst", "admin")}


@pytest.fixture
def client(settings) -> TestClient:
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def model(settings) -> str:
    """The active sensor model, trained on the temperature sample."""
    dataset = services.read_dataset(TEMPERATURE)
    return services.train(Vigil(settings), dataset, activate=True)["version"]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
