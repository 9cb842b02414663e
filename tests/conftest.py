from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def sensor_frame(n: int = 600, seed: int = 0, freq: str = "10min") -> pd.DataFrame:
    """A clean daily-cycle series of two metrics, no anomalies."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2025-01-01", periods=n, freq=freq)
    hour = times.hour.to_numpy()
    return pd.DataFrame({
        "timestamp": times.strftime("%Y-%m-%d %H:%M:%S"),
        "temperature": 20 + 3 * np.sin(2 * np.pi * hour / 24) + rng.normal(0, 0.3, n),
        "vibration": 10 + rng.normal(0, 0.5, n),
    })


def to_csv_bytes(frame: pd.DataFrame, sep: str = ",") -> bytes:
    return frame.to_csv(index=False, sep=sep).encode()


@pytest.fixture
def sensor_csv() -> bytes:
    return to_csv_bytes(sensor_frame())
