"""Project rules that code review alone would let slip."""

import re
import shutil
import subprocess
from pathlib import Path

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_layers_hold():
    """import-linter checks DESIGN.md's layer rule (contracts in pyproject.toml)."""
    lint = shutil.which("lint-imports") or str(Path(__import__("sys").executable).parent / "lint-imports")
    run = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_env_example_lists_exactly_the_settings():
    text = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z_]+)=", text, flags=re.MULTILINE))
    assert listed == {name.upper() for name in Settings.model_fields}


def test_settings_read_the_environment(monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2")
    monkeypatch.setenv("ALERT_MIN_SEVERITY", "critical")
    settings = Settings()
    assert settings.alert_min_severity == "critical"
    assert "hunter2" not in repr(settings)
    assert settings.smtp_password.get_secret_value() == "hunter2"


def test_database_driver_errors_stay_inside_storage():
    """storage turns driver errors into its own DatabaseError: nothing above it catches
    SQLAlchemy's exceptions or reads settings without the application object."""
    for path in (ROOT / "app").rglob("*.py"):
        text = path.read_text()
        assert "DBAPIError" not in text and "sqlalchemy.exc" not in text, path
        if path.name not in ("settings.py", "vigil.py", "ui.py"):
            assert "get_settings()" not in text, path  # entry points build one Vigil
