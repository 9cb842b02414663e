"""The live detector that keeps learning: a change is told once, then it is the normal."""

import pickle

import numpy as np
import pandas as pd
import pytest

from detection import fit, prepare
from detection.stream import StreamScorer


def shifting(n: int = 6000, shift_at: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Two machines' CPU every 5 minutes with a daily cycle; machine a's level jumps from
    about 12 to 55 at ``shift_at`` and stays there."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2026-01-01", periods=n, freq="5min")
    frames = []
    for machine in ("a", "b"):
        hour = times.hour.to_numpy()
        cpu = 12 + 3 * np.sin(2 * np.pi * hour / 24) + rng.normal(0, 1.0, n)
        if machine == "a":
            cpu[shift_at:] += 43
        frames.append(pd.DataFrame({"timestamp": times.strftime("%Y-%m-%d %H:%M:%S"),
                                    "machine": machine, "cpu": cpu.round(2)}))
    frame = pd.concat(frames).sort_values(["timestamp", "machine"], kind="stable")
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return frame


SHIFT = f"{pd.Timestamp('2026-01-01') + 3000 * pd.Timedelta('5min'):%Y-%m-%d %H:%M:%S}"


@pytest.fixture(scope="module")
def stream():
    frame = shifting()
    baseline = frame.iloc[:2000]
    model = fit(prepare(baseline.copy()))
    return model, frame.iloc[2000:]


def test_a_level_shift_is_flagged_where_it_starts_then_learned(stream):
    model, later = stream
    fixed = StreamScorer(model).score(later.copy()).frame
    live = StreamScorer(model, learn=True).score(later.copy()).frame
    shifted = (later["machine"] == "a") & (later["timestamp"] >= SHIFT)
    # The model of the old baseline alarms on most rows after the change, for good ...
    assert fixed.loc[shifted, "is_anomaly"].mean() > 0.5
    assert fixed.loc[shifted, "is_anomaly"].iloc[-500:].mean() > 0.5
    # ... the live detector tells it where it starts, in words, and then learns it.
    flags = live[live["is_anomaly"] == 1]
    first = flags[(flags["machine"] == "a") & (flags["timestamp"] >= SHIFT)].iloc[0]
    assert first["timestamp"] == later.loc[shifted, "timestamp"].iloc[0]
    assert "cpu" in first["reasons"] and first["severity"] in ("high", "critical")
    assert live.loc[shifted, "is_anomaly"].sum() <= 3
    settled = shifted & (later["timestamp"] >= later.loc[shifted, "timestamp"].iloc[700])
    assert live.loc[settled, "anomaly_score"].max() < 50
    assert live.loc[later["machine"] == "b", "is_anomaly"].mean() < 0.005


def test_the_top_score_is_rare(stream):
    model, later = stream
    live = StreamScorer(model, learn=True).score(later.copy()).frame
    top = live["anomaly_score"].max()
    assert (live["anomaly_score"] == top).mean() <= 0.001


@pytest.mark.slow
@pytest.mark.parametrize("size", [1, 7, 500])
def test_any_split_and_a_restart_give_the_scores_of_one_piece(stream, size):
    model, later = stream
    later = later.iloc[:{1: 200, 7: 1400}.get(size, len(later))]
    whole = StreamScorer(model, learn=True).score(later.copy()).frame
    scorer, parts = StreamScorer(model, learn=True), []
    for start in range(0, len(later), size):
        if start == len(later) // 2:  # a restart: the state comes back from a checkpoint
            state = pickle.loads(pickle.dumps(scorer.state))
            scorer = StreamScorer(model, learn=True)
            scorer.state = state
        parts.append(scorer.score(later.iloc[start:start + size].copy()).frame)
    got = pd.concat(parts)
    np.testing.assert_allclose(got["anomaly_score"], whole["anomaly_score"], atol=1e-6)
    assert got["reasons"].tolist() == whole["reasons"].tolist()


def test_a_learning_stream_still_says_its_model_is_stale(stream):
    """The learner keeps the scores useful after a change, but the model's drift (and so
    the "stale: retrain" warning of `vigil stream` and the Live page) was lost."""
    model, later = stream
    fixed = StreamScorer(model).score(later.copy())
    live = StreamScorer(model, learn=True).score(later.copy())
    assert fixed.drift is not None and fixed.drift.stale
    assert live.drift is not None and live.drift.share == fixed.drift.share
    assert fixed.drift.warning() in live.warnings
