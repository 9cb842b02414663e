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


# -- NAB's own scorer ------------------------------------------------------------------
# `python bench/nab.py` scores Vigil with the Numenta Anomaly Benchmark's own optimizer,
# scorer and normaliser (numenta/NAB on GitHub, run unmodified at NAB_COMMIT) and prints
# the result beside the published scoreboard for the three application profiles:
#
# - live (legal in NAB's sense: each row scored from the past only): a model fitted on
#   the file's probationary head (min(15% of rows, 750)), then the rest streamed as
#   `vigil stream` scores it, learning as it goes (detection.learning);
# - trained: the same model scoring the rest against its fixed baseline (what the live
#   path did before it learned);
# - in-file: fitted on the whole file and scored (sees the future: not legal);
# - in-file, learning (`vigil score FILE --learn`): the same, then the file scored as a
#   live stream of it from its first reading with that model's scores as a column.
#
# NAB's code needs a git repository of numenta/NAB (NAB_REPO, or --nab-repo; a bare
# mirror does); its scorer runs under pandas 2.2 in a venv of its own (.venv-nab, from
# bench/requirements-nab.txt), since pandas 3's copy-on-write breaks its labeller.
NAB_COMMIT = "ea702d75cc2258d9d7dd35ca8e5e2539d71f3140"
NAB_FILES = ("nab/__init__.py", "nab/corpus.py", "nab/labeler.py", "nab/optimizer.py",
             "nab/scorer.py", "nab/sweeper.py", "nab/util.py", "nab/runner.py",
             "nab/detectors/__init__.py", "nab/detectors/base.py", "config/profiles.json",
             "results/null")
# Published detectors whose per-file scores (standard profile, at NAB_COMMIT) are shown per
# category beside Vigil's: where the gap to the leaders lies.
LEADERS = ("ARTime", "numentaTM", "contextOSE")
PROFILES_SHOWN = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
# Vigil's detectors in NAB's results: --only's name and the line on the scoreboard.
BOARD = {"vigilLive": ("live", "Vigil live: learns as it goes (legal)"),
         "vigilTrained": ("trained", "Vigil trained: fixed model (legal)"),
         "vigilInfile": ("in-file", "Vigil in-file: fitted on the file (sees the future)"),
         "vigilInfileLearning": ("in-file-learning",
                                 "Vigil in-file, learning (--learn; sees the future)")}
DETECTORS = tuple(BOARD)
CHOICES = {choice: name for name, (choice, _) in BOARD.items()}
ROOT = Path(__file__).resolve().parents[1]

RUN_NAB = """
import json, sys
sys.path.insert(0, sys.argv[1])
from nab.runner import Runner
code, data, labels, results, *names = sys.argv[1:]
thresholds = results + "/thresholds.json"
json.dump({}, open(thresholds, "w"))
runner = Runner(dataDir=data, resultsDir=results, labelPath=labels,
                profilesPath=code + "/config/profiles.json", thresholdPath=thresholds,
                numCPUs=2)
runner.initialize()
runner.score(names, runner.optimize(names))
runner.normalize()
"""


def probation(rows: int) -> int:
    """NAB's probationary period: rows it does not score (nab.util.getProbationPeriod)."""
    return int(min(np.floor(0.15 * rows), 0.15 * 5000))


def _detected(frame: pd.DataFrame, detectors=DETECTORS) -> dict[str, np.ndarray]:
    """Each of ``detectors``' 0-1 anomaly score of every row of one NAB file."""
    import contextlib

    from detection import fit, fit_score, prepare
    from detection.errors import DetectionError
    from detection.stream import StreamScorer

    frame = frame.copy()
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")
    head = probation(len(frame))
    found = {name: np.zeros(len(frame)) for name in detectors}
    for name, learn in (("vigilInfile", False), ("vigilInfileLearning", True)):
        if name in detectors:
            with contextlib.suppress(DetectionError):  # a flat line: nothing to learn from
                _, whole = fit_score(prepare(frame.copy(), profile="sensor"), learn=learn)
                found[name] = whole.frame["anomaly_score"].to_numpy() / 100
    streamed = [(name, name == "vigilLive") for name in ("vigilLive", "vigilTrained")
                if name in detectors]
    if not streamed:
        return found
    try:
        model = fit(prepare(frame.iloc[:head].copy(), profile="sensor"))
    except DetectionError:
        return found
    rest = frame.iloc[head:]
    for name, learn in streamed:
        scored = StreamScorer(model, learn=learn).score(rest.copy()).frame
        found[name][head:] = scored["anomaly_score"].to_numpy() / 100
    return found


def write_results(results: Path, root: Path = NAB, detectors=DETECTORS) -> None:
    """Vigil's scores (by ``detectors``) of every labelled NAB file, as NAB's results
    files."""
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    for key in sorted(labels):
        group, name = key.split("/")
        frame = pd.read_csv(root / "data" / key)
        for detector, scores in _detected(frame, detectors).items():
            folder = results / detector / group
            folder.mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"timestamp": frame["timestamp"], "value": frame["value"],
                          "anomaly_score": np.round(scores, 6), "label": 0}
                         ).to_csv(folder / f"{detector}_{name}", index=False)


def nab_code(repo: Path, into: Path) -> Path:
    """NAB's scorer and its null detector's results at NAB_COMMIT, from a git repository."""
    import subprocess

    leaders = [f"results/{name}/{name}_standard_scores.csv" for name in LEADERS]
    archive = subprocess.run(["git", f"--git-dir={_git_dir(repo)}", "archive", NAB_COMMIT,
                              *NAB_FILES, *leaders], capture_output=True, check=False)
    if archive.returncode:
        raise SystemExit(f"NAB's code at {NAB_COMMIT[:10]} is not in {repo}: "
                         f"{archive.stderr.decode().strip()}")
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def _git_dir(repo: Path) -> Path:
    return repo / ".git" if (repo / ".git").exists() else repo


def nab_python() -> Path:
    """The interpreter of .venv-nab (made on first use) that NAB's scorer runs in."""
    import subprocess
    import sys

    venv = ROOT / ".venv-nab"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r",
                        str(ROOT / "bench" / "requirements-nab.txt")], check=True)
    return python


def run_scorer(code: Path, results: Path, root: Path = NAB,
               detectors=DETECTORS) -> dict[str, dict[str, float]]:
    import subprocess

    null = results / "null"
    if not null.exists():
        (code / "results" / "null").rename(null)
    done = subprocess.run([str(nab_python()), "-c", RUN_NAB, str(code), str(root / "data"),
                           str(root / "labels" / "combined_windows.json"), str(results),
                           "null", *detectors], capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"NAB's scorer failed:\n{done.stderr[-3000:]}")
    return json.loads((results / "final_results.json").read_text())


def category_losses(results: Path, detector: str, profile: str) -> pd.DataFrame:
    """Per NAB category: NAB's raw score and its row counts (flagged rows inside windows,
    TP; outside, FP; window rows not flagged, FN), from its per-file score table."""
    return _per_category(results / detector / f"{detector}_{profile}_scores.csv")


def _per_category(scores: Path) -> pd.DataFrame:
    table = pd.read_csv(scores)
    table = table[table["File"].notna() & (table["File"] != "Totals")]
    table["category"] = table["File"].str.split("/").str[0]
    return table.groupby("category")[["TP", "FP", "FN", "Score"]].sum()


def beside_leaders(code: Path, results: Path, detectors) -> pd.DataFrame:
    """Per NAB category, the standard profile's raw score of each of ``detectors`` beside
    the published ``LEADERS``' (their own per-file tables at NAB_COMMIT), and the total."""
    columns = {name: category_losses(results, name, "standard")["Score"] for name in detectors}
    columns |= {f"{name} (published)": _per_category(
        code / "results" / name / f"{name}_standard_scores.csv")["Score"] for name in LEADERS}
    table = pd.DataFrame(columns)
    table.loc["all"] = table.sum()
    return table


def main() -> None:
    import argparse
    import os
    import sys
    import tempfile
    import time

    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description="Vigil on NAB, scored by NAB's own scorer")
    parser.add_argument("--nab-repo", type=Path, default=os.environ.get("NAB_REPO"),
                        help="a git repository (or bare mirror) of numenta/NAB holding "
                             f"commit {NAB_COMMIT[:10]} (default: $NAB_REPO)")
    parser.add_argument("--only", nargs="+", choices=list(CHOICES), metavar="DETECTOR",
                        help=f"score only these of {', '.join(CHOICES)} (default: all "
                             "four; live alone takes a third of the time, for tuning)")
    args = parser.parse_args()
    detectors = tuple(CHOICES[name] for name in args.only or CHOICES)
    if args.nab_repo is None:
        raise SystemExit("bench/nab.py needs numenta/NAB's code: clone it and pass "
                         "--nab-repo PATH (or set NAB_REPO)")
    published = json.loads((NAB / "results" / "final_results.json").read_text())
    with tempfile.TemporaryDirectory() as folder:
        code = nab_code(args.nab_repo, Path(folder) / "nab")
        results = Path(folder) / "results"
        start = time.perf_counter()
        write_results(results, detectors=detectors)
        print(f"Vigil scored NAB's {len(json.loads((NAB / 'labels' / 'combined_windows.json').read_text()))} "
              f"files in {time.perf_counter() - start:.0f} s; NAB's scorer at "
              f"{NAB_COMMIT[:10]} running ...", flush=True)
        ours = run_scorer(code, results, detectors=detectors)
        board = {**{f"{k} (published)": v for k, v in published.items() if k != "null"},
                 **{BOARD[name][1]: ours[name] for name in detectors}}
        print(f"\n{'detector':52} " + " ".join(f"{p:>18}" for p in PROFILES_SHOWN))
        for name, scores in sorted(board.items(), key=lambda item: -item[1]["standard"]):
            print(f"{name:52} " + " ".join(f"{scores[p]:18.1f}" for p in PROFILES_SHOWN))
        shown = [name for name in ("vigilLive", "vigilInfile", "vigilInfileLearning")
                 if name in detectors]
        for detector in shown:
            print(f"\n{detector}, standard profile, per category: NAB's raw score (each "
                  "window's first detection rewarded by earliness, -1 a missed window, "
                  "-0.11 a false positive row) and its row counts:")
            print(category_losses(results, detector, "standard").round(2).to_string())
        print("\nStandard profile, per category: NAB's raw score beside the leaders' "
              "(a caught window earns up to 1, a missed one costs 1):")
        print(beside_leaders(code, results, shown).round(2).to_string())


if __name__ == "__main__":
    main()
