"""Memory of the Analyze page on a big upload, in the dashboard's own process.

    .venv/bin/python bench/upload.py [--rows 10000000]

Writes a ``timestamp,value`` file of ``--rows`` rows (10M rows are about 270 MB), then
drives the Analyze page with Streamlit's AppTest as a browser session would: upload,
Run detection, the result. The baseline, measured first in the same process, is the
page scoring a 1,000-row file (imports, caches and Streamlit itself). Printed, in MB
above the RSS before each session and as multiples of the file's size: the peak while
scoring, what stays once the session shows its result, and the same for a second
session scoring the same file. Targets (#11): the peak at most ~3x the file, nothing of
the rows kept after (the upload itself stays with its session), a second session
adding far less than the first.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.dashboard.conftest import MAIN, sign_in  # noqa: E402


def series_csv(path: Path, rows: int) -> None:
    """A daily cycle with noise and a few spikes, one reading a minute."""
    rng = np.random.default_rng(0)
    minutes = np.arange(rows)
    value = 20 + 5 * np.sin(2 * np.pi * minutes / 1440) + rng.normal(0, 0.5, rows)
    value[rng.integers(0, rows, max(rows // 100_000, 1))] += 40
    times = pd.Timestamp("2020-01-01") + pd.to_timedelta(minutes, unit="min")
    pd.DataFrame({"timestamp": times.strftime("%Y-%m-%d %H:%M:%S"),
                  "value": value.round(2)}).to_csv(path, index=False)


def _status(field: str) -> int:
    """A /proc/self/status figure in MB (VmRSS now, VmHWM the peak since the reset)."""
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text).group(1)) // 1024


def reset_peak() -> None:
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM starts again from VmRSS


OPEN_SESSIONS: list = []  # sessions stay open, as browser tabs would


def session(path: Path) -> float:
    """One browser session: upload the file, run detection, show the result."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(MAIN), default_timeout=1800)
    sign_in(at, role="analyst")
    at.run()
    at.switch_page("views/analyze.py")
    at.run()
    next(r for r in at.radio if r.label == "Data").set_value("Upload a CSV").run()
    at.file_uploader[0].set_value((path.name, path.read_bytes(), "text/csv")).run()
    assert not at.error, [e.value for e in at.error]
    start = time.perf_counter()
    next(b for b in at.button if b.label == "Run detection").click().run()
    seconds = time.perf_counter() - start
    assert not at.exception, [e.value for e in at.exception]
    assert at.metric, "no result shown"
    OPEN_SESSIONS.append(at)
    return seconds


def measure(path: Path) -> tuple[int, int, float]:
    """(peak MB, MB kept afterwards, seconds) of one session, above the RSS before it."""
    reset_peak()
    before = _status("VmRSS")
    seconds = session(path)
    peak = _status("VmHWM") - before
    gc.collect()
    return peak, _status("VmRSS") - before, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        os.environ["DATABASE_URL"] = f"sqlite:///{folder}/vigil.db"  # a scratch database
        small, big = Path(folder) / "small.csv", Path(folder) / "big.csv"
        series_csv(small, 1_000)
        series_csv(big, args.rows)
        size = big.stat().st_size / 1e6
        baseline = measure(small)
        first = measure(big)
        second = measure(big)
    # The second session finds the file read and scored in the shared caches: what it
    # holds is its own upload (AppTest keeps the bytes more than once; a browser upload
    # is held once). The first session's figures less that are the page's own.
    upload = second[1]
    print(f"file: {args.rows:,} rows, {size:,.0f} MB; baseline session (1,000 rows): "
          f"peak +{baseline[0]} MB, kept +{baseline[1]} MB")
    print(f"{'session':10} {'seconds':>8} {'peak MB':>8} {'kept MB':>8}")
    for label, (peak, kept, seconds) in (("first", first), ("second", second)):
        print(f"{label:10} {seconds:8.1f} {peak:8} {kept:8}")
    page_peak, page_kept = first[0] - upload, first[1] - upload
    print(f"the page itself, as multiples of the file: peak {page_peak / size:.2f}x "
          f"({page_peak} MB), kept {page_kept / size:.2f}x ({page_kept} MB); a second "
          f"session adds {(second[0] - upload) / size:.2f}x beyond its upload")


if __name__ == "__main__":
    main()
