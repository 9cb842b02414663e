"""Seeded generator of realistic labelled CSVs, and the small CSVs it produced."""

from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent
SAMPLES = {
    "elevators.csv": "Elevator sensors: revolutions, humidity, vibration for four elevators",
    "temperature.csv": "A timestamp,value temperature series with a daily cycle",
    "logins.csv": "Login activity of 200 users over 30 days",
}


def sample_path(name: str) -> Path:
    return SAMPLE_DIR / name


def labels_path(name: str) -> Path:
    """Ground truth for a sample: row,pattern,incident (kept apart from the data)."""
    return SAMPLE_DIR / name.replace(".csv", ".labels.csv")
