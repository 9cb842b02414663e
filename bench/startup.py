"""How long a new user waits for the command line: start-up, not scoring.

    .venv/bin/python bench/startup.py [--repeat 5]

In a scratch SQLite database, with a sensor model trained on the elevators sample and
active: the median wall time of ``vigil --help`` and of ``vigil score`` on a 10-row file
with that model, each a fresh process as a user runs it. Beside them, in the same run:
the interpreter alone (``python -c pass``) and ``python -c "import pandas"``, the floor
any command that reads a CSV pays.
Targets: ``vigil --help`` at most 0.3 s; ``vigil score`` of 10 rows at most 1.0 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIGIL = [sys.executable, "-m", "app"]
TARGETS = {"vigil --help": 0.3, "vigil score, 10 rows, saved model": 1.0}


def seconds(command: list[str], env: dict, repeat: int) -> float:
    """Median wall time of ``command`` run ``repeat`` times, each checked to succeed."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{folder / 'vigil.db'}",
               "VIGIL_ENV_FILE": os.devnull, "ALERT_OUTBOX_DIR": str(folder / "outbox")}
        # As on a user's machine, the first run writes the project's bytecode and later
        # runs read it (with PYTHONDONTWRITEBYTECODE, as this machine sets, every run
        # compiled about 100 files again: 0.2 s of each start).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        sample = ROOT / "sample_data" / "elevators.csv"
        subprocess.run([*VIGIL, "train", str(sample), "--profile", "sensor", "--activate"],
                       env=env, check=True, capture_output=True)
        ten = folder / "ten.csv"
        ten.write_text("".join(sample.read_text().splitlines(keepends=True)[:11]))
        subprocess.run([*VIGIL, "score", str(ten), "--model", "active"], env=env, check=True,
                       capture_output=True)  # the first run after a fit writes caches
        figures = {
            "python -c pass": seconds([sys.executable, "-c", "pass"], env, args.repeat),
            "python -c 'import pandas'": seconds([sys.executable, "-c", "import pandas"],
                                                 env, args.repeat),
            "vigil --help": seconds([*VIGIL, "--help"], env, args.repeat),
            "vigil score, 10 rows, saved model": seconds(
                [*VIGIL, "score", str(ten), "--model", "active"], env, args.repeat),
        }
    floor = figures["python -c pass"]
    print(f"{'command':36} {'seconds':>8} {'x python':>9}  target")
    for name, value in figures.items():
        target = TARGETS.get(name)
        verdict = f"<= {target} s: {'met' if value <= target else 'MISSED'}" if target else ""
        print(f"{name:36} {value:8.3f} {value / floor:8.1f}x  {verdict}")


if __name__ == "__main__":
    main()
