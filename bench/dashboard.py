"""The dashboard answers quickly: Analyze on each bundled sample, Explore on a 1,000,000-row run.

    .venv/bin/python bench/dashboard.py [--rows 1000000]

With Streamlit's AppTest, signed in as an analyst would be, in a scratch SQLite database:
the server time of Analyze's "Run detection" on each bundled sample (the page already
open, as a user clicks it); then a generated sensor file of ``--rows`` rows (three
metrics, several elevators) scored and stored, and the time to render Explore for that
run and the data its charts send to the browser. Beside it, in the same run: the same
page for the 8,064-row elevators sample (the baseline), and what charts of every raw row
would send.
Targets: Analyze on each sample in at most 2 s; Explore renders in at most 5 s and sends
at most 5 MB of chart data.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.speed import sensor_csv  # noqa: E402
from tests.dashboard.conftest import MAIN, chart_payload, sign_in  # noqa: E402

ANALYZE_TARGET_S = 2.0


def signed_in_app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(MAIN), default_timeout=300)
    sign_in(at, role="admin")
    at.run()
    return at


def analyze_sample(name: str) -> float:
    """Seconds the server takes for "Run detection" on bundled sample ``name``, read and
    scored afresh (the page's caches emptied: a user's first click, not a repeat)."""
    import streamlit as st

    st.cache_resource.clear()
    at = signed_in_app()
    at.switch_page("views/analyze.py")
    at.run()
    next(s for s in at.selectbox if s.label == "Sample").set_value(name).run()
    start = time.perf_counter()
    next(b for b in at.button if b.label == "Run detection").click().run()
    seconds = time.perf_counter() - start
    assert not at.exception, [e.value for e in at.exception]
    assert at.metric, "no result shown"
    return seconds


def store(path: Path) -> int:
    from app import services
    from app.vigil import Vigil

    dataset = services.read_dataset(path)
    result = services.analyze(Vigil(), dataset)
    report = services.save(Vigil(), result, source_name=path.name,
                           file_sha256=services.file_sha256(path))
    assert report.stored, report.message
    return report.run_id


def render_explore(run_id: int) -> tuple[float, int, int]:
    """(seconds, chart rows, chart bytes) for Explore showing ``run_id``."""
    at = signed_in_app()
    at.query_params["run"] = str(run_id)
    at.switch_page("views/explore.py")
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    assert not at.exception, [e.value for e in at.exception]
    payload = chart_payload(at)
    return seconds, sum(r for r, _ in payload), sum(b for _, b in payload)


def raw_chart_bytes(path: Path) -> int:
    """What one chart of every raw row (time, elevator, three metrics) would send."""
    import pandas as pd

    frame = pd.read_csv(path)
    sink = pa.BufferOutputStream()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ.update(DATABASE_URL=f"sqlite:///{folder / 'vigil.db'}",
                          ALERT_OUTBOX_DIR=str(folder / "outbox"),
                          JOURNAL_DIR=str(folder / "journal"))
        from sample_data import SAMPLES

        analyze_sample(next(iter(SAMPLES)))  # warm imports and caches once, for every sample
        analyzed = {name: analyze_sample(name) for name in SAMPLES}
        big = folder / "big.csv"
        sensor_csv(big, args.rows)
        start = time.perf_counter()
        big_run = store(big)
        print(f"scored and stored {args.rows:,} rows in {time.perf_counter() - start:.1f} s")
        small_run = store(ROOT / "sample_data" / "elevators.csv")
        render_explore(small_run)  # warm imports and caches once, for both
        small = render_explore(small_run)
        large = render_explore(big_run)
        raw = raw_chart_bytes(big)

    print(f"\n{'Analyze, Run detection':24} {'seconds':>8} {'of target':>10}")
    for name, seconds in analyzed.items():
        print(f"{name:24} {seconds:8.2f} {seconds / ANALYZE_TARGET_S:9.2f}x")
    slowest = max(analyzed.values())
    print(f"slowest sample {slowest:.2f} s (target <= {ANALYZE_TARGET_S:.0f} s: "
          f"{'met' if slowest <= ANALYZE_TARGET_S else 'MISSED'})")
    print(f"\n{'Explore for':24} {'seconds':>8} {'chart rows':>11} {'chart MB':>9}")
    print(f"{'8,064-row sample':24} {small[0]:8.2f} {small[1]:11,} {small[2] / 1e6:9.2f}")
    print(f"{f'{args.rows:,}-row run':24} {large[0]:8.2f} {large[1]:11,} {large[2] / 1e6:9.2f}")
    print(f"{'every raw row, one chart':24} {'':>8} {args.rows:11,} {raw / 1e6:9.2f}")
    print(f"\n{args.rows:,} rows render in {large[0]:.2f} s, {large[0] / small[0]:.1f}x the "
          f"small sample (target <= 5 s: {'met' if large[0] <= 5 else 'MISSED'}); charts send "
          f"{large[2] / 1e6:.2f} MB, {raw / large[2]:.0f}x less than the raw rows (target "
          f"<= 5 MB: {'met' if large[2] <= 5e6 else 'MISSED'})")


if __name__ == "__main__":
    main()
