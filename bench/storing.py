"""Bulk insert of anomalies into PostgreSQL, against ORM objects one by one and COPY.

    .venv/bin/python bench/storing.py [--rows 100000] [--orm-rows 10000]
        [--url postgresql://postgres@127.0.0.1:5432/postgres]

Creates a scratch database on the server, migrates it and measures, in the same run:
1. Vigil's ``save_run`` of a run with ``--rows`` anomalies (one transaction);
2. the same rows added as ORM objects one by one (``session.add`` and a flush per row, as
   an app that stores each row as it goes), timed on ``--orm-rows`` rows and scaled;
3. PostgreSQL's COPY of the same rows, serialised before the clock starts (the upper
   bound: ``save_run`` also turns the rows into COPY's input, inside its timing).
Targets: 100,000 anomalies in at most 3 s, at least 20x faster than one by one.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage import db  # noqa: E402
from storage.runs import COPY_COLUMNS, RunToSave, save_run  # noqa: E402
from storage.schema import Anomaly, DetectionRun  # noqa: E402
from tests.storage.conftest import make_run  # noqa: E402


def scratch_database(server: str):
    admin = db.make_engine(server)
    name = f"vigil_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = db.make_engine(make_url(server).set(database=name)
                            .render_as_string(hide_password=False))
    db.upgrade(engine)
    return admin, engine, name


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stored_at(engine, run_id: int):
    """When a run was stored: its rows' month (the partition they go to)."""
    with Session(engine) as session:
        return session.get(DetectionRun, run_id).created_at


def orm_one_by_one(engine, run: RunToSave, run_id: int) -> None:
    created = stored_at(engine, run_id)
    with Session(engine) as session:
        for row in run.anomalies.to_dict("records"):
            session.add(Anomaly(run_id=run_id, run_created_at=created, **row))
            session.flush()
        session.commit()


def copy_buffer(run: RunToSave, run_id: int, created) -> io.StringIO:
    """The rows as CSV, made before the clock starts: COPY alone is the upper bound."""
    buffer = io.StringIO()
    frame = run.anomalies.assign(run_id=run_id, run_created_at=created, incident_id=None,
                                 data=[json.dumps(d) for d in run.anomalies["data"]])
    frame[list(COPY_COLUMNS)].to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    return buffer


def copy(engine, buffer: io.StringIO) -> None:
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.copy_expert(f"COPY anomalies ({', '.join(COPY_COLUMNS)}) FROM STDIN WITH CSV",
                               buffer)
        raw.commit()
    finally:
        raw.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--orm-rows", type=int, default=10_000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    admin, engine, name = scratch_database(args.url)
    try:
        run = make_run(args.rows)
        vigil_s = timed(lambda: save_run(engine, run=run))
        base = save_run(engine, run=make_run(1, file_sha256="0" * 64)).run_id
        orm_run = make_run(args.orm_rows)
        orm_run.anomalies["row_number"] += 1_000_000
        orm_s = timed(lambda: orm_one_by_one(engine, orm_run, base)) * args.rows / args.orm_rows
        copy_run = make_run(args.rows)
        copy_run.anomalies["row_number"] += 2_000_000
        buffer = copy_buffer(copy_run, base, stored_at(engine, base))
        copy_s = timed(lambda: copy(engine, buffer))
    finally:
        engine.dispose()
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    rate = args.rows / vigil_s
    print(f"{args.rows:,} anomalies into PostgreSQL\n")
    print(f"{'method':34} {'seconds':>8} {'rows/s':>10} {'vs Vigil':>9}")
    for label, seconds in (("Vigil save_run (one transaction)", vigil_s),
                           (f"ORM one by one (scaled from {args.orm_rows:,})", orm_s),
                           ("COPY (upper bound)", copy_s)):
        print(f"{label:34} {seconds:8.2f} {args.rows / seconds:10,.0f} "
              f"{seconds / vigil_s:8.2f}x")
    print(f"\nVigil: {vigil_s:.2f} s (target <= 3 s: {'met' if vigil_s <= 3 else 'MISSED'}), "
          f"{orm_s / vigil_s:.1f}x faster than one by one (target >= 20x: "
          f"{'met' if orm_s / vigil_s >= 20 else 'MISSED'}), at {copy_s / vigil_s:.0%} of "
          f"COPY's speed; {rate:,.0f} rows/s")


if __name__ == "__main__":
    main()
