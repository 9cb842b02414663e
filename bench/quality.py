"""Detection quality: the labelled samples, trained mode and NAB, beside baselines run in
the same go.

    .venv/bin/python bench/quality.py            # every table (about 4 minutes)
    .venv/bin/python bench/quality.py smd nab    # only these (while tuning on one set)

Samples: precision of the flags and which injected incidents were caught. Trained mode:
a model fitted on 30 days of one machine's normal history scores the next 30 days,
once normal and once with spikes, a drift and a stuck sensor; false flags are flags on
rows outside the incidents (target: at most 1% of a normal file). NAB
(realKnownCause + realAWSCloudwatch): window recall (windows with at least one flag),
flag precision (share of flags inside a window) and ROC-AUC of the score, for Vigil
and for a global z-score (|z| > 3) and IsolationForest on the raw value (1% flagged),
Vigil's also over five forest seeds (one window is 0.02 of recall) and, beside
IsolationForest on the raw value, at flag shares of 1% to 3% (what each reaches);
then trained on real data: a model of each file's readings before its first window scores
the rest (share of the rows outside the windows flagged, windows caught, whether the
stale warning fired: many files change level for good at their first anomaly).
Login cases: a model of a month of logins with latency, response time and bytes scores
the next month with 20 injected logins (and the month scored on its own); caught per
kind beside IsolationForest on the raw numbers. Server machines: SMD-like data (24
metrics a minute driven by shared causes; SMD itself is reachable here only in part), a
model of a normal week scoring the next, normal and with eight faults: share of the
normal week flagged, faults caught, flag precision, ROC-AUC, beside IsolationForest on
the raw metrics (cut at its baseline's 1.5%). SMD's six machines (``../shared/datasets/smd``,
38 metrics a minute, train and labelled test parts): a model of each train part scores
its test part against its fixed baseline and learning as it goes (the live path), beside
IsolationForest on the raw metrics: incident segments caught, flagged rows, flag
precision. SKAB (a test bench's 8 sensors a second, 34
experiments with labelled collective anomalies, in ``../shared/datasets/skab``), by its
own protocol: a model of each file's first 400 readings scores the rest; F1, false-alarm
and missed-alarm rates over all rows, beside IsolationForest on the raw sensors (cut at
its baseline's 1.5%). ODDS tabular sets (the ``.mat`` files of
odds.cs.stonybrook.edu, in ``../shared/datasets/odds``: the 21 that PyOD's repository
carries or carried), scored on their own by the generic profile: ROC-AUC beside
IsolationForest on the raw columns; then trained: a model of half of each set's normal
rows scores the other half and the outliers (share of each flagged). Without that folder, ODDS' recipe (one class
down-sampled to a few outliers) applied to the UCI sets scikit-learn bundles stands in:
wine, breast cancer (= ODDS wbc) and digits (a small optdigits).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nab  # noqa: E402

from detection import fit, fit_score, prepare, read_csv  # noqa: E402
from sample_data import SAMPLES, labels_path, sample_path  # noqa: E402
from sample_data.generate import START, login_numbers, machine, server  # noqa: E402

AFTER = 30  # readings after an incident whose flags count as its after-effects


def raw_forest(baseline: pd.DataFrame, later: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """IsolationForest on a baseline's raw columns scoring later rows, the baseline's top
    1.5% cut as Vigil's: (flags, scores)."""
    forest = IsolationForest(random_state=0).fit(baseline)
    raw = -forest.score_samples(later)
    return raw > np.quantile(-forest.score_samples(baseline), 0.985), raw


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


def logins_as_read() -> None:
    """The logins sample as an analyst reads it: which labelled attack leads the list, and
    the password sprays (one address, many users) as incidents."""
    from storage.runs import RunToSave

    result = fit_score(prepare(read_csv(sample_path("logins.csv"))))[1]
    labels = pd.read_csv(labels_path("logins.csv")).set_index("row")
    ranked = result.frame.sort_values("anomaly_score", ascending=False, kind="stable")
    top = [labels["pattern"].get(row, "normal") for row in ranked.index[:5]]
    found = RunToSave.from_result(result, source_name="logins.csv", file_sha256="")
    numbers = found.incident_numbers()
    sprays = labels[labels["pattern"] == "password_spray"]
    spray_incidents = {numbers[i] for i, row in enumerate(found.anomalies["row_number"])
                       if row in sprays.index}
    incidents = found.incidents(numbers).set_index("number")
    print("\nLogins as read (the sample fitted on itself): the five highest scores, and the "
          "password sprays as incidents")
    print(f"highest five: {', '.join(top)} (takeover first: "
          f"{'yes' if top[0] == 'account_takeover' else 'NO'})")
    print(f"{sprays['incident'].nunique()} sprays ({len(sprays)} labelled rows) -> "
          f"{len(spray_incidents)} incident(s) of {len(incidents)}: " + "; ".join(
              incidents.loc[n, "summary"].split(";")[0] for n in sorted(spray_incidents)))


def trained_mode(seeds: int = 6) -> None:
    print("\nTrained mode: 30 days of normal history, then the next 30 days of one machine")
    print(f"{'seed':>4} {'normal file':>11} {'with incidents':>14} {'after-effects':>13} "
          f"{'critical':>8}  incidents caught")
    shares = []
    for seed in range(seeds):
        history, _ = machine(np.random.default_rng(2 * seed), anomalies=False)
        model = fit(prepare(history))
        later = START + pd.Timedelta(days=30)
        normal, _ = machine(np.random.default_rng(2 * seed + 1), start=later, anomalies=False)
        normal_share = model.score(prepare(normal)).frame["is_anomaly"].mean()
        new, labels = machine(np.random.default_rng(2 * seed + 1), start=later)
        result = model.score(prepare(new)).frame
        flagged = result["is_anomaly"].to_numpy() == 1
        incident = np.zeros(len(result), dtype=bool)
        after = np.zeros(len(result), dtype=bool)
        caught = {}
        for name, rows in pd.DataFrame(labels, columns=["row", "pattern", "name"]).groupby(
                "name")["row"]:
            positions = rows.to_numpy() - 1
            incident[positions] = True
            after[positions.max() + 1:positions.max() + 1 + AFTER] = True
            caught[name] = flagged[positions].any()
        after &= ~incident
        false = flagged & ~incident
        critical = (result.loc[flagged, "severity"] == "critical").mean()
        shares.append(normal_share)
        print(f"{seed:>4} {normal_share:>11.2%} {false.sum() / (~incident).sum():>14.2%} "
              f"{(false & after).sum():>13} {critical:>8.0%}  {sum(caught.values())}/{len(caught)}"
              + "".join(f", missed {n}" for n, hit in caught.items() if not hit))
    print(f"normal files: mean {np.mean(shares):.2%}, worst {max(shares):.2%} flagged "
          "(target: at most 1%)")


def server_machines(seeds: int = 6) -> None:
    """SMD-like multi-metric data (sample_data.generate.server): a model of a normal week
    of one machine scores the next week, once normal and once with eight faults."""
    from sklearn.metrics import roc_auc_score

    print("\nServer machines (24 metrics a minute, SMD-like): a normal week, then the next "
          "week normal and with eight faults")
    print(f"{'seed':>4} {'normal file':>11} {'flags':>5} {'precision':>9} {'ROC-AUC':>7} "
          f"{'faults':>6}   iforest raw: precision ROC-AUC faults")
    totals = np.zeros(3)  # faults caught, flags, flags inside a fault
    for seed in range(seeds):
        later = START + pd.Timedelta(days=7)
        history = server(np.random.default_rng(2 * seed), machine=seed, incidents=False)[0]
        normal = server(np.random.default_rng(2 * seed + 1), start=later, machine=seed,
                        incidents=False)[0]
        faulty, labels = server(np.random.default_rng(2 * seed + 1), start=later, machine=seed)
        model = fit(prepare(history))
        normal_share = model.score(prepare(normal)).frame["is_anomaly"].mean()
        result = model.score(prepare(faulty)).frame
        labels = pd.DataFrame(labels, columns=["row", "pattern", "name"])
        inside = np.zeros(len(faulty), dtype=bool)
        inside[labels["row"] - 1] = True
        columns = [c for c in faulty.columns if c != "timestamp"]
        raw_flags, raw = raw_forest(history[columns], faulty[columns])

        def outcome(flagged, scores, labels=labels, inside=inside):
            caught = sum(flagged[g["row"] - 1].any() for _, g in labels.groupby("name"))
            return caught, flagged.sum(), (flagged & inside).sum(), roc_auc_score(inside, scores)

        caught, flags, hits, auc = outcome(result["is_anomaly"].to_numpy() == 1,
                                           result["anomaly_score"].to_numpy())
        raw_caught, raw_flags, raw_hits, raw_auc = outcome(raw_flags, raw)
        totals += (caught, flags, hits)
        print(f"{seed:>4} {normal_share:>11.2%} {flags:>5} {hits / max(flags, 1):>9.2f} "
              f"{auc:>7.3f} {caught:>4}/8   {raw_hits / max(raw_flags, 1):>20.2f} "
              f"{raw_auc:>7.3f} {raw_caught:>4}/8")
    print(f"faults caught {totals[0] / (8 * seeds):.2f}, flag precision "
          f"{totals[2] / max(totals[1], 1):.2f} (targets: at least 0.8 at 0.45)")


def login_cases(seeds: int = 3) -> None:
    print("\nLogins with latency, response time and bytes: 30 days of history, then 30 days "
          "with 20 injected logins (7 slow links, 7 bulk downloads, 6 from a country no one "
          "uses)")
    print(f"{'seed':>4} {'mode':8} {'flags':>5} {'precision':>9} {'critical':>8}  caught "
          "(iforest on the raw numbers, 1% flagged: caught); critical: injected/all")
    for seed in range(seeds):
        frame, labels = login_numbers(np.random.default_rng(seed))
        labels = pd.DataFrame(labels, columns=["row", "pattern", "incident"])
        split = (pd.to_datetime(frame["timestamp"]) < START + pd.Timedelta(days=30)).to_numpy()
        later = frame[~split]
        numbers = later[["latency_ms", "response_ms", "bytes"]].to_numpy()
        raw = IsolationForest(contamination=0.01, random_state=0).fit(numbers).predict(numbers)
        injected = labels["row"].to_numpy() - 1  # positions in the whole file
        for mode in ("trained", "in-file"):
            if mode == "trained":
                result = fit(prepare(frame[split])).score(prepare(later)).frame
            else:
                result = fit_score(prepare(later))[1].frame
            flagged = result["is_anomaly"].to_numpy() == 1
            cases = np.isin(later.index, injected)
            kinds = labels.set_index("row").loc[later.index[cases] + 1, "pattern"].to_numpy()
            caught = pd.Series(flagged[cases]).groupby(kinds).agg(["sum", "count"])
            raw_caught = pd.Series(raw[cases] == -1).groupby(kinds).sum()
            critical = result["severity"].to_numpy() == "critical"
            print(f"{seed:>4} {mode:8} {flagged.sum():>5} "
                  f"{(flagged & cases).sum() / max(flagged.sum(), 1):>9.2f} "
                  f"{f'{(critical & cases).sum()}/{critical.sum()}':>8}  "
                  + ", ".join(f"{p} {s}/{c} ({raw_caught[p]})"
                              for p, (s, c) in caught.iterrows()))


def nab_vigil(s: nab.Series, seed: int = 0, **params) -> nab.Outcome:
    """Vigil's flags and scores on a NAB file, fitted on the file itself."""
    result = fit_score(prepare(read_csv(s.path)), random_state=seed, **params)[1].frame
    return nab.evaluate(s, result["is_anomaly"].to_numpy() == 1,
                        result["anomaly_score"].to_numpy())


def nab_raw(s: nab.Series, share: float = 0.01) -> nab.Outcome:
    """IsolationForest on a NAB file's raw value, ``share`` of its rows flagged."""
    value = s.frame["value"].to_numpy(dtype="float64")[:, None]
    forest = IsolationForest(contamination=share, random_state=0).fit(value)
    return nab.evaluate(s, forest.predict(value) == -1, -forest.score_samples(value))


def nab_table() -> None:
    series = nab.load()
    if not series:
        print(f"\nNAB not found at {nab.NAB}: skipped")
        return
    outcomes: dict[str, list] = {"vigil": [], "zscore_global": [], "iforest_raw_1pct": []}
    print(f"\nNAB, {len(series)} files: per file window recall / flag precision / ROC-AUC")
    print(f"{'file':58} {'vigil':>18} {'iforest raw':>18}")
    for s in series:
        ours, raw = nab_vigil(s), nab_raw(s)
        value = s.frame["value"].to_numpy(dtype="float64")
        z = np.abs(value - value.mean()) / (value.std() or 1.0)
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
          "(targets: recall >= 0.9, precision >= 0.6, both above iforest raw)")
    nab_seeds(series, ours)
    nab_shares(series)
    nab_trained_table(series)


NAB_SEEDS = 5  # forests: one window is 0.02 of recall, and which rows top a file moves


def nab_seeds(series: list[nab.Series], first: dict[str, float]) -> None:
    """Vigil's NAB figures over ``NAB_SEEDS`` forest seeds (``first``: seed 0's)."""
    figures = [first] + [nab.summary([nab_vigil(s, seed) for s in series])
                         for seed in range(1, NAB_SEEDS)]

    def spread(key: str) -> str:
        values = [f[key] for f in figures]
        return f"{np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"

    print(f"vigil over forest seeds 0-{NAB_SEEDS - 1}: window recall {spread('window_recall')}, "
          f"flag precision {spread('flag_precision')}")


NAB_SHARES = (0.01, 0.015, 0.02, 0.03)


def nab_shares(series: list[nab.Series]) -> None:
    """Window recall and flag precision as the flag share (``contamination``) moves, for
    Vigil (seed 0) and IsolationForest on the raw value: where the targets lie against
    what each can reach, a share at a time."""
    print("flag share: window recall / flag precision, vigil beside iforest raw")
    for share in NAB_SHARES:
        ours = nab.summary([nab_vigil(s, contamination=share) for s in series])
        raw = nab.summary([nab_raw(s, share) for s in series])
        print(f"{share:>10.1%}: vigil {ours['window_recall']:.3f} / {ours['flag_precision']:.3f}"
              f"   iforest raw {raw['window_recall']:.3f} / {raw['flag_precision']:.3f}")


MIN_NAB_BASELINE = 1000  # readings before a file's first window to train on


def nab_trained_table(series: list[nab.Series]) -> None:
    """Trained mode on real series: a model of the readings before each file's first
    window (normal history, as far as NAB's labels tell) scores the readings after it."""
    print(f"\nNAB, trained: a model of the readings before each file's first window (at least "
          f"{MIN_NAB_BASELINE:,}) scores the rest")
    print(f"{'file':58} {'baseline':>8} {'normal flagged':>14} {'windows':>7} {'model':>6}")
    fresh, caught, windows = [], 0, 0
    for s in series:
        first = int(np.argmax(s.in_window))
        if not s.windows or first < MIN_NAB_BASELINE:
            continue
        frame = read_csv(s.path)
        scored = fit(prepare(frame.iloc[:first])).score(prepare(frame.iloc[first:]))
        flagged = scored.frame["is_anomaly"].to_numpy() == 1
        inside = s.in_window[first:]
        time = pd.to_datetime(s.frame["timestamp"]).iloc[first:].to_numpy()
        hit = sum(bool(flagged[(time >= a) & (time <= b)].any()) for a, b in s.windows)
        caught, windows = caught + hit, windows + len(s.windows)
        stale, share = scored.drift.stale, flagged[~inside].mean() if (~inside).any() else None
        if not stale and share is not None:
            fresh.append(share)
        print(f"{s.name:58} {first:>8,} {'-' if share is None else f'{share:.2%}':>14} "
              f"{f'{hit}/{len(s.windows)}':>7} {'stale' if stale else 'fresh':>6}")
    flagged = (f"normal rows flagged: median {np.median(fresh):.2%}, worst {max(fresh):.2%} "
               "(target: at most 1%); " if fresh else "")
    print(f"files the model still describes (no stale warning): {len(fresh)}, {flagged}"
          f"windows caught {caught}/{windows}")


SMD = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "smd"
SMD_MACHINES = ("machine-1-2", "machine-1-5", "machine-2-2", "machine-2-5", "machine-3-3",
                "machine-3-10")


def _smd_frame(values: np.ndarray, start: pd.Timestamp) -> pd.DataFrame:
    """SMD's rows (no timestamps of their own) as a file of one reading a minute."""
    frame = pd.DataFrame(values, columns=[f"m{k:02d}" for k in range(values.shape[1])])
    frame.insert(0, "timestamp", pd.date_range(start, periods=len(frame), freq="1min")
                 .strftime("%Y-%m-%d %H:%M:%S"))
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    return frame


def _segments(flags: np.ndarray, inside: np.ndarray) -> tuple[int, int]:
    """(incident segments with a flagged row, segments)."""
    edges = np.diff(np.r_[0, inside.astype(int), 0])
    spans = list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))
    return sum(bool(flags[a:b].any()) for a, b in spans), len(spans)


def smd_table() -> None:
    """SMD's six machines: a model of each machine's train part scores its test part,
    against the fixed baseline (`vigil score --model`) and learning as it goes (`vigil
    stream`), beside IsolationForest on the raw metrics (cut where 1.5% of its train part
    lies above)."""
    from detection.stream import StreamScorer

    if not (SMD / f"{SMD_MACHINES[0]}_train.txt.gz").exists():
        print(f"\nSMD not found at {SMD}: skipped")
        return
    print("\nSMD, six machines (38 metrics a minute): a model of the train part scores the "
          "test part; incident segments caught, flagged rows, flag precision")
    print(f"{'machine':13} {'fixed model':>22} {'live, learning':>22} {'iforest raw':>22}")
    totals = np.zeros((3, 4))
    for name in SMD_MACHINES:
        train = np.loadtxt(SMD / f"{name}_train.txt.gz", delimiter=",")
        test = np.loadtxt(SMD / f"{name}_test.txt.gz", delimiter=",")
        inside = np.loadtxt(SMD / f"{name}_test_label.txt.gz", delimiter=",") == 1
        baseline = _smd_frame(train, pd.Timestamp(START))
        later = _smd_frame(test, pd.Timestamp(START) + len(train) * pd.Timedelta("1min"))
        model = fit(prepare(baseline.copy(), profile="sensor"))
        flagged = [StreamScorer(model, learn=learn).score(later.copy()).frame["is_anomaly"]
                   .to_numpy() == 1 for learn in (False, True)]
        flagged.append(raw_forest(baseline.iloc[:, 1:], later.iloc[:, 1:])[0])
        cells = []
        for k, flags in enumerate(flagged):
            caught, segments = _segments(flags, inside)
            totals[k] += (caught, segments, (flags & inside).sum(), flags.sum())
            cells.append(f"{caught:>2}/{segments:<2} {flags.sum():>7,} "
                         f"{(flags & inside).sum() / max(flags.sum(), 1):>5.2f}")
        print(f"{name:13} " + " ".join(f"{c:>22}" for c in cells))
    print(f"{'all six':13} " + " ".join(
        f"{f'{t[0] / t[1]:.2f} {int(t[3]):>7,} {t[2] / max(t[3], 1):>5.2f}':>22}"
        for t in totals))


SKAB = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "skab"
SKAB_TRAIN = 400  # SKAB's protocol: the first 400 readings of each file are normal history


def skab_table() -> None:
    """SKAB's experiments, each scored by a model of its first ``SKAB_TRAIN`` readings."""
    files = sorted(p for p in SKAB.glob("*/*.csv") if p.parent.name != "anomaly-free")
    if not files:
        print(f"\nSKAB not found at {SKAB}: skipped")
        return
    from sklearn.metrics import roc_auc_score

    counts = np.zeros((2, 3), dtype=int)  # (vigil, raw) x (true, false, missed) alarms
    aucs, stale, normal = np.zeros((len(files), 2)), 0, 0
    for i, path in enumerate(files):
        frame = read_csv(path)
        anomaly = frame.pop("anomaly").to_numpy()[SKAB_TRAIN:] == 1
        frame = frame.drop(columns="changepoint")
        base, later = frame.iloc[:SKAB_TRAIN], frame.iloc[SKAB_TRAIN:]
        scored = fit(prepare(base)).score(prepare(later))
        stale, normal = stale + scored.drift.stale, normal + int((~anomaly).sum())
        sensors = [c for c in frame.columns if c != "datetime"]
        for k, (flags, scores) in enumerate([
                (scored.frame["is_anomaly"].to_numpy() == 1, scored.frame["anomaly_score"]),
                raw_forest(base[sensors], later[sensors])]):
            counts[k] += [(flags & anomaly).sum(), (flags & ~anomaly).sum(),
                          (~flags & anomaly).sum()]
            aucs[i, k] = roc_auc_score(anomaly, scores)
    print(f"\nSKAB, {len(files)} experiments (8 sensors a second): a model of each file's first "
          f"{SKAB_TRAIN} readings scores the rest")
    print(f"{'':12} {'F1':>5} {'false alarms':>12} {'missed':>6} {'precision':>9} {'ROC-AUC':>7}")
    for k, name in enumerate(("vigil", "iforest raw")):
        hit, false, missed = counts[k]
        print(f"{name:12} {2 * hit / (2 * hit + false + missed):>5.3f} {false / normal:>12.1%} "
              f"{missed / (hit + missed):>6.1%} {hit / max(hit + false, 1):>9.2f} "
              f"{aucs[:, k].mean():>7.3f}")
    print(f"stale warnings: {stale} of {len(files)} models (each from {SKAB_TRAIN} seconds of "
          "one experiment)")


ODDS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "odds"


def odds_sets(seed: int = 0) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    """ODDS' sets, or ODDS-style sets from scikit-learn's bundled UCI data without them:
    (features, 1 = outlier)."""
    from scipy.io import loadmat
    from sklearn import datasets

    if files := sorted(ODDS.glob("*.mat")):
        sets = {}
        for path in files:
            data = loadmat(path)
            columns = [f"x{i}" for i in range(data["X"].shape[1])]
            sets[path.stem] = (pd.DataFrame(data["X"], columns=columns),
                               data["y"].ravel().astype(int))
        return sets

    rng = np.random.default_rng(seed)

    def odds(data, inlier, outlier, outliers):
        X, y = data.data, data.target
        keep_out = rng.choice(np.flatnonzero(np.isin(y, outlier)), outliers, replace=False)
        rows = np.concatenate([np.flatnonzero(np.isin(y, inlier)), keep_out])
        frame = pd.DataFrame(X[rows], columns=[f"x{i}" for i in range(X.shape[1])])
        return frame, np.isin(rows, keep_out).astype(int)

    return {
        # ODDS wine: classes 2 and 3 normal, 10 of class 1 (129 rows).
        "wine": odds(datasets.load_wine(), [1, 2], [0], 10),
        # ODDS wbc: benign normal, 21 malignant (378 rows).
        "wbc": odds(datasets.load_breast_cancer(), [1], [0], 21),
        # optdigits' recipe on the bundled digits: 1-9 normal, 3% zeros.
        "digits": odds(datasets.load_digits(), list(range(1, 10)), [0], 50),
    }


ODDS_HALVES = 2  # random halves of a set's normal rows, each a trained model's baseline


def odds_trained(frame: pd.DataFrame, outlier: np.ndarray) -> tuple[float, float]:
    """Trained mode on a tabular set: a model of a random half of its normal rows scores
    the other half and the outliers; (share of those normal rows flagged, of the outliers),
    averaged over ``ODDS_HALVES`` halvings."""
    shares = []
    for seed in range(ODDS_HALVES):
        normal = np.random.default_rng(seed).permutation(np.flatnonzero(~outlier))
        base, rest = normal[: normal.size // 2], normal[normal.size // 2:]
        model = fit(prepare(frame.iloc[base].reset_index(drop=True), profile="generic"))
        later = np.r_[rest, np.flatnonzero(outlier)]
        flagged = model.score(prepare(frame.iloc[later].reset_index(drop=True),
                                      profile="generic")).frame["is_anomaly"].to_numpy() == 1
        shares.append((flagged[: rest.size].mean(), flagged[rest.size:].mean()))
    return tuple(np.mean(shares, axis=0))


def odds_table() -> None:
    from sklearn.metrics import roc_auc_score

    sets = odds_sets()
    print(f"\n{'ODDS' if ODDS.is_dir() else 'ODDS-style'} sets (generic profile): ROC-AUC "
          f"fitted on the set; trained: a model of half the normal rows ({ODDS_HALVES} random "
          "halves) scores the other half and the outliers, share of each flagged")
    print(f"{'set':10} {'rows':>6} {'outliers':>8} {'vigil':>6} {'iforest raw':>11} "
          f"{'normal flagged':>14} {'outliers flagged':>16}")
    ours, raw, trained = [], [], []
    for name, (frame, outlier) in sets.items():
        result = fit_score(prepare(frame, profile="generic"))[1].frame
        forest = IsolationForest(random_state=0).fit(frame.to_numpy())
        ours.append(roc_auc_score(outlier, result["anomaly_score"]))
        raw.append(roc_auc_score(outlier, -forest.score_samples(frame.to_numpy())))
        trained.append(odds_trained(frame, outlier == 1))
        print(f"{name:10} {len(frame):>6} {outlier.sum():>8} {ours[-1]:>6.3f} {raw[-1]:>11.3f} "
              f"{trained[-1][0]:>14.2%} {trained[-1][1]:>16.1%}")
    normal = np.array([n for n, _ in trained])
    print(f"{'mean':10} {'':>6} {'':>8} {np.mean(ours):>6.3f} {np.mean(raw):>11.3f} "
          f"{normal.mean():>14.2%} {np.mean([o for _, o in trained]):>16.1%} "
          "(target: mean ROC-AUC >= 0.86)")
    print(f"trained: normal rows flagged median {np.median(normal):.2%}, worst {normal.max():.2%}, "
          f"{(normal > 0.01).sum()} of {len(normal)} sets above 1% (target: at most 1%)")


TABLES = {"samples": samples, "logins": logins_as_read, "trained": trained_mode,
          "servers": server_machines, "login-cases": login_cases, "smd": smd_table,
          "skab": skab_table, "nab": nab_table, "odds": odds_table}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Vigil's detection quality on every "
                                     "labelled set, beside baselines run in the same go")
    parser.add_argument("tables", nargs="*", metavar="TABLE",
                        help=f"only these tables, of: {', '.join(TABLES)} (default: all; "
                             "a change is judged on all of them)")
    chosen = parser.parse_args().tables or list(TABLES)
    unknown = [name for name in chosen if name not in TABLES]
    if unknown:
        parser.error(f"no table {', '.join(unknown)}: the tables are {', '.join(TABLES)}")
    for name in TABLES:
        if name in chosen:
            TABLES[name]()


if __name__ == "__main__":
    main()
