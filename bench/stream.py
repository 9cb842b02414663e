"""The live path: throughput, latency of an appended line, memory over a long replay.

    .venv/bin/python bench/stream.py [--rows 1000000] [--replay-rows 10000000]

All with a sensor model trained on 100,000 rows of the generator bench/speed.py uses,
in a scratch SQLite database:

1. Throughput: `vigil stream FILE --model V` on ``--rows`` sensor rows and as many login
   events (login model trained on 100,000 events), each against `vigil score FILE
   --model V` on the same file (the baseline, measured in the same run). Targets: at
   least 50,000 sensor rows/s and 10,000 login events/s.
2. Latency: `vigil stream FILE --follow --save` while a line is appended every 50 ms for
   20 s; each line's time from being written to being stored (its checkpoint). Target:
   p99 at most 1 s.
3. Two writers: two `vigil replay X | vigil stream - --save --source S` at once, and a
   third after both. Target: every row stored exactly once, or the writer that could not
   store its rows exits non-zero saying why (never "N rows scored" for rows not stored).
4. Memory: `vigil replay --rate` (as fast as it goes) of ``--replay-rows`` rows into
   `vigil stream -`; the stream process's RSS after the first tenth of the rows and at
   the end. Target: growth at most 50 MB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.speed import login_csv, sensor_csv  # noqa: E402

APP = [sys.executable, "-m", "app"]


def train(baseline: Path, profile: str) -> str:
    trained = subprocess.run([*APP, "train", str(baseline), "--profile", profile],
                             capture_output=True, text=True, check=True)
    return trained.stdout.strip().splitlines()[-1].split()[-1]


def throughput(data: Path, version: str, rows: int, what: str, target: int) -> None:
    stream_s = timed([*APP, "stream", str(data), "--model", version, "--out", os.devnull])
    score_s = timed([*APP, "score", str(data), "--model", version, "--out", os.devnull])
    print(f"throughput, {rows:,} {what}: vigil stream {stream_s:.1f} s ({rows / stream_s:,.0f}"
          f"/s, target >= {target:,}); vigil score --model {score_s:.1f} s "
          f"({rows / score_s:,.0f}/s): stream/score time x{stream_s / score_s:.2f}")


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in text.splitlines() if line.startswith("VmRSS")).split()[1]
               ) / 1024


def latency(tmp: Path, version: str, lines: list[str]) -> np.ndarray:
    """Seconds from writing each appended line to its row being stored."""
    from app import services
    from app.settings import Settings
    from app.vigil import Vigil

    settings = Settings(database_url=os.environ["DATABASE_URL"])
    live = tmp / "live.csv"
    live.write_text(lines[0] + "".join(lines[1:101]))
    process = subprocess.Popen([*APP, "stream", str(live), "--follow", "--save", "--model",
                                version, "--source", "latency", "--out", os.devnull],
                               stderr=subprocess.DEVNULL)
    try:
        while services.stream_checkpoint(Vigil(settings), "latency")[0] < 100:
            time.sleep(0.05)
        written: dict[int, float] = {}
        stored: dict[int, float] = {}

        def watch() -> None:
            seen, deadline = 100, time.perf_counter() + 60
            while seen < 500 and time.perf_counter() < deadline:
                position = services.stream_checkpoint(Vigil(settings), "latency")[0]
                now = time.perf_counter()
                for row in range(seen + 1, position + 1):
                    stored[row] = now
                seen = max(seen, position)
                time.sleep(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        with live.open("a") as handle:
            for i, line in enumerate(lines[101:501], start=101):
                handle.write(line)
                handle.flush()
                written[i] = time.perf_counter()
                time.sleep(0.05)
        watcher.join(timeout=60)
    finally:
        process.terminate()
        process.wait()
    return np.array([stored[row] - written[row] for row in written if row in stored])


def two_writers(tmp: Path, version: str, data: Path, rows: int) -> None:
    """Two replays into one saved stream at once, then one more after both: each writer
    either stores its rows or fails loudly; at the end every row is stored exactly once."""
    from app import services
    from app.settings import Settings
    from app.vigil import Vigil

    part = tmp / "two-writers.csv"
    part.write_text("".join(data.read_text().splitlines(keepends=True)[:rows + 1]))

    def writer() -> subprocess.Popen:
        replay = subprocess.Popen([*APP, "replay", str(part), "--rate", "20000"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        stream = subprocess.Popen([*APP, "stream", "-", "--model", version, "--save",
                                   "--source", "two-writers", "--out", os.devnull],
                                  stdin=replay.stdout, stderr=subprocess.PIPE, text=True)
        replay.stdout.close()
        return stream

    both = [writer(), writer()]
    outcomes = [(w.wait(), w.stderr.read().strip().splitlines()[-1:]) for w in both]
    last = writer()
    outcomes.append((last.wait(), last.stderr.read().strip().splitlines()[-1:]))
    stored = services.stream_checkpoint(Vigil(Settings(
        database_url=os.environ["DATABASE_URL"])), "two-writers")[0]
    for code, said in outcomes:
        print(f"  writer exit {code}: {said[0] if said else ''}")
    ok = stored == rows and all(code == 0 or "error:" in said[0] for code, said in outcomes)
    print(f"two writers, {rows:,} rows each into one stream: {stored:,} rows stored, "
          f"{'every row once' if stored == rows else 'ROWS MISSING'}; "
          f"{'each writer stored or failed loudly' if ok else 'A WRITER FAILED SILENTLY'}")


def replay_memory(tmp: Path, version: str, rows: int) -> tuple[float, float, float]:
    """(RSS MB after a tenth of the rows, at the end, seconds) of `vigil stream -`."""
    big = tmp / "replay.csv"
    sensor_csv(big, rows)
    replay = subprocess.Popen([*APP, "replay", str(big), "--rate", "10000000"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = tmp / "replayed.csv"
    start = time.perf_counter()
    stream = subprocess.Popen([*APP, "stream", "-", "--model", version, "--out", str(out)],
                              stdin=replay.stdout, stderr=subprocess.DEVNULL)
    replay.stdout.close()
    warm = end = 0.0
    line_bytes = big.stat().st_size / rows
    while stream.poll() is None:
        done = out.stat().st_size / line_bytes if out.exists() else 0
        mb = rss_mb(stream.pid)
        if not warm and done >= rows / 10:
            warm = mb
        end = mb
        time.sleep(0.5)
    seconds = time.perf_counter() - start
    replay.wait()
    big.unlink()
    return warm, end, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--replay-rows", type=int, default=10_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'vigil.db'}"
        baseline, data = tmp / "baseline.csv", tmp / "sensors.csv"
        sensor_csv(baseline, 100_000)
        sensor_csv(data, args.rows)
        version = train(baseline, "sensor")
        throughput(data, version, args.rows, "sensor rows", 50_000)
        login_baseline, logins = tmp / "login-baseline.csv", tmp / "logins.csv"
        login_csv(login_baseline, 100_000)
        login_csv(logins, args.rows)
        throughput(logins, train(login_baseline, "login"), args.rows, "login events", 10_000)
        lines = data.read_text().splitlines(keepends=True)[:501]
        waits = latency(tmp, version, lines)
        print(f"latency, {len(waits)} appended lines: p50 {np.percentile(waits, 50):.2f} s, "
              f"p99 {np.percentile(waits, 99):.2f} s (target <= 1 s)")
        two_writers(tmp, version, data, 20_000)
        if args.replay_rows:
            warm, end, seconds = replay_memory(tmp, version, args.replay_rows)
            print(f"memory, {args.replay_rows:,} rows replayed into vigil stream in "
                  f"{seconds:.0f} s: RSS {warm:.0f} MB after a tenth, {end:.0f} MB at the end, "
                  f"growth {end - warm:+.0f} MB (target <= 50)")


if __name__ == "__main__":
    main()
