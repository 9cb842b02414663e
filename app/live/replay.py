"""`vigil replay`: write a file's rows to a stream at the pace they happened.

For demos (``vigil replay logins.csv --speed 60 | vigil stream - ...``) and soak tests:
rows go out at K times real time by their timestamps, or at R rows a second. The file is
read in chunks, so a replay of ten million rows holds one chunk at a time.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import pandas as pd

from detection.columns import map_columns
from detection.dataset import row_times
from detection.errors import ColumnMappingError, DetectionError
from detection.reading import SAMPLE_BYTES, sniff_delimiter

CHUNK_ROWS = 10_000
TICK_S = 0.05  # rows due within this are written together


def replay(path: Path, out: TextIO, *, speed: float | None = None, rate: float | None = None,
           clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> int:
    """Write ``path``'s header, then its rows as they fall due; returns the rows written.

    ``speed`` K: a row is due (its time - the first row's time) / K seconds after the
    start. ``rate`` R: row i is due i / R seconds after the start.
    """
    if (speed is None) == (rate is None):
        raise DetectionError("give either --speed or --rate")
    if (speed or rate) <= 0:
        raise DetectionError("--speed and --rate must be above 0")
    start, first, written = clock(), None, 0
    writer = csv.writer(out, lineterminator="\n")
    with open(path, "rb") as handle:
        delimiter = sniff_delimiter(handle.read(SAMPLE_BYTES).decode("utf-8", "ignore"))
    with pd.read_csv(path, chunksize=CHUNK_ROWS, dtype=str, keep_default_na=False,
                     skipinitialspace=True, sep=delimiter, encoding_errors="replace") as chunks:
        for chunk in chunks:
            if written == 0:
                writer.writerow(chunk.columns)
            if speed is not None:
                column = map_columns(list(chunk.columns)).timestamp
                if column is None:
                    raise ColumnMappingError(f"{path.name} has no timestamp column to pace "
                                             "--speed by: use --rate")
                times = row_times(chunk, column).to_numpy(dtype="int64")
                first = times[0] if first is None else first
                due = (times - first) / 1e9 / speed
            else:
                due = (written + pd.RangeIndex(len(chunk)).to_numpy()) / rate
            written += _write_when_due(chunk, due, writer, out, start, clock, sleep)
    return written


def _write_when_due(chunk: pd.DataFrame, due, writer, out: TextIO, start: float,
                    clock, sleep) -> int:
    rows = chunk.itertuples(index=False, name=None)
    i = 0
    while i < len(chunk):
        wait = due[i] - (clock() - start)
        if wait > 0:
            sleep(wait)
        now = clock() - start
        j = i
        while j < len(chunk) and due[j] <= now + TICK_S:
            j += 1
        j = max(j, i + 1)
        writer.writerows(next(rows) for _ in range(j - i))
        out.flush()
        i = j
    return len(chunk)
