"""Throughput and latency of `POST /v1/score` on a real `vigil serve`.

    .venv/bin/python bench/api.py [--clients 50] [--seconds 20] [--workers 2]

Starts `vigil serve --workers N` on loopback with a scratch SQLite database, an active
sensor model (trained on the temperature sample) and an analyst token, then has
``--clients`` keep-alive connections (wrk, Debian's `wrk` package: `apt-get install wrk`)
post 100-row CSV bodies for ``--seconds``. The baseline,
measured first in the same run: the same bodies scored by the use case called directly
(`services.score_rows`, one process, no HTTP). Printed: errors (non-2xx answers and
socket errors), latency p50/p99, rows a second, and the ratio to the baseline. Targets
(#14): 0 errors, p99 <= 250 ms, >= 20,000 rows/s on 2 cores. The clients run on the same
machine (wrk takes about 1% of a core where a Python client took 30%).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROWS = 100


def bodies() -> list[bytes]:
    """100-row bodies cut from the temperature sample, each with the header."""
    from sample_data import sample_path

    header, *lines = sample_path("temperature.csv").read_text().splitlines()
    return [("\n".join([header, *lines[i:i + ROWS]]) + "\n").encode()
            for i in range(0, len(lines) - ROWS + 1, ROWS)]


def baseline(data: list[bytes], settings, seconds: float = 5.0) -> float:
    """Rows a second of the use case itself, in this process."""
    from app import services
    from app.vigil import Vigil

    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        services.score_rows(Vigil(settings), data[done % len(data)])
        done += 1
    return done * ROWS / (time.perf_counter() - start)


# wrk: a load generator in C (Debian's `wrk`), so the clients take little of the cores
# the server scores on. Each connection posts the bodies in turn; done() prints the
# figures as one line of JSON (latencies in microseconds).
WRK_SCRIPT = """
local bodies, i = {}, 0
for n = 0, %(count)d - 1 do
  local f = io.open(string.format("%(folder)s/%%d.csv", n), "rb")
  bodies[n + 1] = f:read("*all"); f:close()
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/csv"
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, "/v1/score", nil, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %%d, "seconds": %%f, "p50": %%d, "p99": %%d, '
    .. '"status": %%d, "connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50),
    latency:percentile(99), e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def load(url: str, token: str, data: list[bytes], clients: int, seconds: float,
         folder: Path) -> dict:
    """``clients`` keep-alive connections posting for ``seconds``: wrk's figures."""
    for n, body in enumerate(data):
        (folder / f"{n}.csv").write_bytes(body)
    script = folder / "post.lua"
    script.write_text(WRK_SCRIPT % {"count": len(data), "folder": folder, "token": token})
    done = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout",
                           "10s", "-s", str(script), url], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/api.py drives the load with wrk: apt-get install wrk")
    from app import services
    from app.settings import Settings
    from app.vigil import Vigil

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(database_url=f"sqlite:///{folder}/vigil.db",
                            journal_dir=Path(folder) / "journal",
                            alert_outbox_dir=Path(folder) / "outbox")
        from sample_data import sample_path

        services.train(Vigil(settings), services.read_dataset(sample_path("temperature.csv")), activate=True)
        services.add_user(Vigil(settings), "bench", role="analyst", password="a long passphrase")
        token = services.add_token(Vigil(settings), "bench", role="analyst", user="bench")
        data = bodies()
        base = baseline(data, settings)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "DATABASE_URL": settings.database_url}
        server = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port),
                                   "--workers", str(args.workers)], env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            work = Path(folder) / "wrk"
            work.mkdir()
            load(url, token, data, args.clients, 3, work)  # warm every process
            figures = load(url, token, data, args.clients, args.seconds, work)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    errors = sum(figures[kind] for kind in ("status", "connect", "read", "write", "timeout"))
    rate = figures["requests"] * ROWS / figures["seconds"]
    p50, p99 = figures["p50"] / 1000, figures["p99"] / 1000
    print(f"POST /v1/score, {ROWS}-row CSV bodies, {args.clients} clients (wrk), "
          f"{args.seconds:g} s, {args.workers} worker processes on {os.cpu_count()} cores")
    print(f"baseline (services.score_rows in one process, no HTTP): {base:,.0f} rows/s")
    print(f"{'requests':>9} {'errors':>7} {'p50 ms':>7} {'p99 ms':>7} {'rows/s':>8} "
          f"{'x baseline':>10}")
    print(f"{figures['requests']:9,} {errors:7} {p50:7.0f} {p99:7.0f} {rate:8,.0f} "
          f"{rate / base:10.2f}")
    if errors:
        print("errors by kind:", ", ".join(
            f"{'non-2xx' if k == 'status' else k}: {figures[k]}"
            for k in ("status", "connect", "read", "write", "timeout") if figures[k]))
    print(f"targets: 0 errors ({'met' if errors == 0 else 'NOT met'}), p99 <= 250 ms "
          f"({'met' if p99 <= 250 else 'NOT met'}), >= 20,000 rows/s "
          f"({'met' if rate >= 20_000 else 'NOT met'})")


if __name__ == "__main__":
    main()
