"""Detection quality: the labelled samples and NAB, beside baselines run in the same go.

    .venv/bin/python bench/quality.py

Samples: precision of the flags and which injected incidents were caught. NAB
(realKnownCause + realAWSCloudwatch): window recall (windows with at least one flag),
flag precision (share of flags inside a window) and ROC-AUC of the score, for Vigil
and for a global z-score (|z| > 3) and IsolationForest on the raw value (1% flagged).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nab  # noqa: E402

from detection import fit_score, prepare, read_csv  # noqa: E402
from sample_data import SAMPLES, labels_path, sample_path  # noqa: E402


def samples() -> None:
    print("Labelled samples (fit on the file itself, default settings)")
    print(f"{'sample':18} {'flags':>6} {'precision':>9}  incidents caught")
    for name in SAMPLES:
        result = fit_score(prepare(read_csv(sample_path(name))))[1].frame
        labels = pd.read_csv(labels_path(name))
        flagged = set(result.index[result["is_anomaly"] == 1])
        precision = len(flagged & set(labels["row"])) / max(len(flagged), 1)
        caught = labels.groupby("incident")["row"].apply(lambda r, f=flagged: bool(set(r) & f))
        by_pattern = labels.drop_duplicates("incident").set_index("incident")["pattern"]
        patterns = caught.groupby(by_pattern).agg(["sum", "count"])
        text = ", ".join(f"{p} {s}/{c}" for p, (s, c) in patterns.iterrows())
        print(f"{name:18} {len(flagged):>6} {precision:>9.2f}  {text}")
        missed = list(caught[~caught].index)
        if missed:
            print(f"{'':18} missed: {', '.join(missed)}")


def nab_table() -> None:
    series = nab.load()
    if not series:
        print(f"\nNAB not found at {nab.NAB}: skipped")
        return
    outcomes: dict[str, list] = {"vigil": [], "zscore_global": [], "iforest_raw_1pct": []}
    print(f"\nNAB, {len(series)} files: per file window recall / flag precision / ROC-AUC")
    print(f"{'file':58} {'vigil':>18} {'iforest raw':>18}")
    for s in series:
        result = fit_score(prepare(read_csv(s.path)))[1].frame
        ours = nab.evaluate(s, result["is_anomaly"].to_numpy() == 1,
                            result["anomaly_score"].to_numpy())
        value = s.frame["value"].to_numpy(dtype="float64")
        z = np.abs(value - value.mean()) / (value.std() or 1.0)
        forest = IsolationForest(contamination=0.01, random_state=0).fit(value[:, None])
        raw = nab.evaluate(s, forest.predict(value[:, None]) == -1,
                           -forest.score_samples(value[:, None]))
        outcomes["vigil"].append(ours)
        outcomes["zscore_global"].append(nab.evaluate(s, z > 3, z))
        outcomes["iforest_raw_1pct"].append(raw)

        def cell(o):
            return f"{o.windows_hit}/{o.windows} {o.flags_inside / max(o.flags, 1):.2f} {o.auc:.2f}"

        print(f"{s.name:58} {cell(ours):>18} {cell(raw):>18}")
    print(f"\n{'overall':18} {'window recall':>13} {'flag precision':>14} {'ROC-AUC':>8} {'flags':>6}")
    for name, items in outcomes.items():
        m = nab.summary(items)
        print(f"{name:18} {m['window_recall']:>13.3f} {m['flag_precision']:>14.3f} "
              f"{m['roc_auc']:>8.3f} {m['flags']:>6}")
    ours, raw = nab.summary(outcomes["vigil"]), nab.summary(outcomes["iforest_raw_1pct"])
    print(f"\nvigil / iforest raw: recall x{ours['window_recall'] / raw['window_recall']:.2f}, "
          f"precision x{ours['flag_precision'] / raw['flag_precision']:.2f} "
          "(targets: recall >= 0.85, precision >= 0.55, both above iforest raw)")


if __name__ == "__main__":
    samples()
    nab_table()
