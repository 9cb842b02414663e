"""Throughput and latency of `POST /v1/score` on a real `vigil serve`.

    .venv/bin/python bench/api.py [--clients 50] [--seconds 20] [--workers 2]

Starts `vigil serve --workers N` on loopback with a scratch SQLite database, an active
sensor model (trained on the temperature sample) and an analyst token, then has
``--clients`` concurrent clients post 100-row CSV bodies for ``--seconds``. The baseline,
measured first in the same run: the same bodies scored by the use case called directly
(`services.score_rows`, one process, no HTTP). Printed: errors, latency p50/p99, rows a
second, and the ratio to the baseline. Targets (#14): 0 errors, p99 <= 250 ms,
>= 20,000 rows/s on 2 cores. The clients run on the same machine and take CPU too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

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


async def load(url: str, token: str, data: list[bytes], clients: int, seconds: float):
    latencies, errors, kinds = [], 0, {}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=30) as client:
        stop = time.perf_counter() + seconds

        async def one(i: int) -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/score", content=data[i % len(data)])
                    kind = str(response.status_code)
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                ok = kind == "200"
                if not ok:
                    kinds[kind] = kinds.get(kind, 0) + 1
                latencies.append(time.perf_counter() - started)
                errors += not ok
                i += clients

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(clients)))
        elapsed = time.perf_counter() - start
    return np.array(latencies), errors, elapsed, kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
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
            asyncio.run(load(url, token, data, args.clients, 2))  # warm every worker
            latencies, errors, elapsed, kinds = asyncio.run(
                load(url, token, data, args.clients, args.seconds))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    rate = len(latencies) * ROWS / elapsed
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    print(f"POST /v1/score, {ROWS}-row CSV bodies, {args.clients} clients, {args.seconds:g} s, "
          f"{args.workers} workers on {os.cpu_count()} cores")
    print(f"baseline (services.score_rows in one process, no HTTP): {base:,.0f} rows/s")
    print(f"{'requests':>9} {'errors':>7} {'p50 ms':>7} {'p99 ms':>7} {'rows/s':>8} "
          f"{'x baseline':>10}")
    print(f"{len(latencies):9,} {errors:7} {p50:7.0f} {p99:7.0f} {rate:8,.0f} "
          f"{rate / base:10.2f}")
    if kinds:
        print("errors by kind:", ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())))
    print(f"targets: 0 errors ({'met' if errors == 0 else 'NOT met'}), p99 <= 250 ms "
          f"({'met' if p99 <= 250 else 'NOT met'}), >= 20,000 rows/s "
          f"({'met' if rate >= 20_000 else 'NOT met'})")


if __name__ == "__main__":
    main()
