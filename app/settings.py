"""One Settings object, read from the environment and `.env` (see `.env.example`)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"


class Settings(BaseSettings):
    """Every setting Vigil reads. Only the app layer reads settings; lower layers take
    explicit arguments."""

    # VIGIL_ENV_FILE names another file than ./.env (the test suite names none, so a
    # developer's own .env never reaches a test).
    model_config = SettingsConfigDict(env_file=os.environ.get("VIGIL_ENV_FILE", ".env"),
                                      env_file_encoding="utf-8", extra="ignore")

    database_url: str = f"sqlite:///{DATA_DIR / 'vigil.db'}"
    journal_dir: Path = DATA_DIR / "fallback"
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "ssl"] = "starttls"
    smtp_from: str = "vigil@localhost"
    alert_to_security: str = ""
    alert_to_maintenance: str = ""
    alert_min_severity: Literal["low", "medium", "high", "critical"] = "high"
    alert_max_per_hour: int = Field(default=6, ge=1)
    alert_outbox_dir: Path = DATA_DIR / "outbox"
    # Flagged rows of one entity closer than this form one incident.
    incident_gap_sensor_minutes: float = Field(default=30, gt=0)
    incident_gap_login_minutes: float = Field(default=120, gt=0)
    dashboard_url: str = "http://localhost:8501"
    # `vigil db prune` without --older-than deletes runs stored more than this many days
    # ago (reviewed ones kept); empty: only an explicit --older-than prunes.
    retention_days: int | None = Field(default=None, gt=0)
    # `--engine dask` runs on the Dask scheduler at this address (tcp://scheduler:8786);
    # empty: on a local cluster of worker processes on this machine.
    dask_scheduler: str = ""
    # The dashboard shows times in this zone (an IANA name: Europe/Oslo); stored as UTC.
    display_timezone: str = "UTC"
    # HTTP API (`vigil serve`): request bodies above this are refused (413); with a
    # metrics token, /health and /metrics need `Authorization: Bearer <it>` too.
    api_max_body_mb: float = Field(default=100, gt=0)
    metrics_token: SecretStr | None = None
    # Dashboard sign-in: signed out after this long without a click.
    session_idle_hours: float = Field(default=8, gt=0)
    # Single sign-on ([auth] in .streamlit/secrets.toml): the identity token's claim
    # that names a role, for people without an account of their e-mail.
    sso_role_claim: str = "vigil_role"
    # `vigil users bootstrap` (docker compose runs it): the first administrator.
    vigil_admin_user: str | None = None
    vigil_admin_password: SecretStr | None = None

    @field_validator("display_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"not a time zone name (like Europe/Oslo or UTC): {value!r}"
                             ) from None
        return value

    def incident_gap_minutes(self, profile: str) -> float:
        """Login incidents span hours (a slow brute force); sensor and generic ones less."""
        return self.incident_gap_login_minutes if profile == "login" \
            else self.incident_gap_sensor_minutes

    @field_validator("metrics_token", "vigil_admin_password")
    @classmethod
    def _unset_when_empty(cls, token: SecretStr | None) -> SecretStr | None:
        return token if token and token.get_secret_value() else None

    @field_validator("retention_days", mode="before")
    @classmethod
    def _no_retention_when_empty(cls, days: object) -> object:
        return None if days == "" else days

    @field_validator("journal_dir", "alert_outbox_dir")
    @classmethod
    def _expand_home(cls, folder: Path) -> Path:
        return folder.expanduser()  # `~/vigil/outbox` in .env means the home folder


@lru_cache
def get_settings() -> Settings:
    return Settings()
