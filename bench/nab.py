"""Load NAB series and their labelled windows; score flags against the windows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

NAB = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "nab"
GROUPS = ("realKnownCause", "realAWSCloudwatch")


@dataclass
class Series:
    name: str
    path: Path
    frame: pd.DataFrame       # timestamp, value
    windows: list[tuple[pd.Timestamp, pd.Timestamp]]
    in_window: np.ndarray     # bool per row


def load(root: Path = NAB, groups=GROUPS) -> list[Series]:
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    series = []
    for group in groups:
        for path in sorted((root / "data" / group).glob("*.csv")):
            key = f"{group}/{path.name}"
            frame = pd.read_csv(path)
            time = pd.to_datetime(frame["timestamp"])
            windows = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in labels.get(key, [])]
            inside = np.zeros(len(frame), dtype=bool)
            for a, b in windows:
                inside |= ((time >= a) & (time <= b)).to_numpy()
            series.append(Series(key, path, frame, windows, inside))
    return series


@dataclass
class Outcome:
    windows: int
    windows_hit: int
    flags: int
    flags_inside: int
    auc: float


def evaluate(s: Series, flags: np.ndarray, scores: np.ndarray) -> Outcome:
    time = pd.to_datetime(s.frame["timestamp"])
    hit = 0
    for a, b in s.windows:
        inside = ((time >= a) & (time <= b)).to_numpy()
        hit += bool((flags & inside).any())
    auc = roc_auc_score(s.in_window, scores) if 0 < s.in_window.sum() < len(scores) else np.nan
    return Outcome(len(s.windows), hit, int(flags.sum()), int((flags & s.in_window).sum()), auc)


def summary(outcomes: list[Outcome]) -> dict[str, float]:
    windows = sum(o.windows for o in outcomes)
    flags = sum(o.flags for o in outcomes)
    return {
        "window_recall": sum(o.windows_hit for o in outcomes) / max(windows, 1),
        "flag_precision": sum(o.flags_inside for o in outcomes) / max(flags, 1),
        "roc_auc": float(np.nanmean([o.auc for o in outcomes])),
        "flags": flags,
    }
