"""`vigil stream`: score rows as they arrive, with a registered model.

Rows come from standard input, a file, or a file that keeps growing (``follow``: new
lines are picked up as they are written, and a rotated file, renamed away and created
anew, is followed from its start). They are scored in micro-batches (what has arrived
within ``wait`` seconds, at most ``batch`` rows) by detection.stream, which carries each
entity's recent rows from batch to batch. Sensor rows are scored by the detector that keeps
learning (detection.learning): they get the scores ``vigil score --model V --learn`` gives
the whole file; login rows the scores ``vigil score --model V`` gives it. A record must fit on one line (no line breaks inside quotes).
"""

from __future__ import annotations

import os
import selectors
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from detection import Dataset, Model, ScoredFrame, prepare
from detection.errors import MalformedCsvError
from detection.export import write_csv
from detection.reading import holds_values, read_csv
from detection.stream import StreamScorer

BATCH_ROWS = 25_000  # a batch that arrives at once (a file read through) is scored in these
WAIT_S = 0.2
POLL_S = 0.1
READ_BYTES = 4 << 20  # a big file is read four megabytes at a time, not held whole


@dataclass
class Streamed:
    rows: int = 0
    flagged: int = 0


def lines(source: BinaryIO | Path, *, follow: bool = False,
          wait: float = WAIT_S) -> Iterator[list[bytes]]:
    """Batches of complete lines, each batch what arrived within ``wait`` seconds.

    ``source`` is a pipe or terminal (read until it closes) or a file path (read to its
    end; with ``follow``, then kept open for what is appended, across rotation).
    """
    if isinstance(source, Path):
        yield from _file_lines(source, follow=follow, wait=wait)
    elif stat.S_ISREG(os.fstat(source.fileno()).st_mode):  # `vigil stream - < file`
        yield from _read_lines(source)
    else:
        yield from _pipe_lines(source, wait=wait)


def _read_lines(handle: BinaryIO) -> Iterator[list[bytes]]:
    """A file's complete lines a megabyte at a time, to its end."""
    partial = b""
    while data := handle.read(READ_BYTES):
        *complete, partial = (partial + data).split(b"\n")
        if complete:
            yield complete
    if partial:
        yield [partial]


def _pipe_lines(pipe: BinaryIO, *, wait: float) -> Iterator[list[bytes]]:
    selector = selectors.DefaultSelector()
    selector.register(pipe, selectors.EVENT_READ)
    partial, batch, since = b"", [], None
    while True:
        timeout = None if since is None else max(0.0, since + wait - time.monotonic())
        ready = selector.select(timeout)
        if ready:
            data = os.read(pipe.fileno(), 1 << 16)
            if not data:  # closed
                if partial:
                    batch.append(partial)
                if batch:
                    yield batch
                return
            *complete, partial = (partial + data).split(b"\n")
            batch.extend(complete)
            since = since or time.monotonic()
        if since is not None and (not ready or time.monotonic() - since >= wait):
            if batch:
                yield batch
            batch, since = [], None


def _file_lines(path: Path, *, follow: bool, wait: float) -> Iterator[list[bytes]]:
    handle = open(path, "rb")  # noqa: SIM115 - reopened on rotation, closed at the end
    inode = os.fstat(handle.fileno()).st_ino
    partial = b""
    try:
        while True:
            data = handle.read(READ_BYTES)
            if data:
                *complete, partial = (partial + data).split(b"\n")
                if complete:
                    yield complete
                continue
            if not follow:
                if partial:
                    yield [partial]
                return
            time.sleep(min(POLL_S, wait))
            try:
                current = os.stat(path)
            except FileNotFoundError:
                continue  # between the rename and the new file
            if current.st_ino != inode or current.st_size < handle.tell():
                handle.close()  # rotated or truncated: the new file from its start
                handle = open(path, "rb")  # noqa: SIM115
                inode = os.fstat(handle.fileno()).st_ino
                partial = b""
    finally:
        handle.close()


Keep = Callable[[ScoredFrame, int, int, dict], None]


def stream(batches: Iterator[list[bytes]], model_for: Callable[[str], Model], out: BinaryIO,
           *, profile: str = "auto", batch_rows: int = BATCH_ROWS, skip: int = 0,
           carried: dict | None = None, keep: Keep | None = None,
           known: Callable[[Dataset], Dataset] | None = None) -> Streamed:
    """Score each batch of lines (the first line is the header) and write the scored
    rows to ``out`` as CSV as soon as they are scored. ``model_for(profile)`` gives the
    model once the first rows tell the profile (or ``profile`` is given).

    A restart passes the checkpoint: ``skip`` rows were scored before (they are read
    and passed over) and ``carried`` is what they left for the next batch
    (``StreamScorer.state``). ``keep`` (the result, first and last row position, the
    state carried on) stores each batch
    before its rows are written out. ``known`` adds analysts' known values to each batch
    of logins (:func:`app.services.with_known`).
    """
    scorer = None
    done, header, position = Streamed(), None, 0
    for batch in batches:
        batch = [line for line in batch if line.strip()]
        if header is None and batch:
            header = batch[0]
            if holds_values(header):  # each batch is read with it, and restarts find it
                raise MalformedCsvError("the stream's first line holds values: a stream "
                                        "starts with a header line naming its columns")
        # A rotated file starts with the header again: it is no row.
        batch = [line for line in batch if line != header]
        passed = min(len(batch), max(0, skip - position))
        position += passed
        batch = batch[passed:]
        for start in range(0, len(batch), batch_rows):
            rows = batch[start:start + batch_rows]
            frame = read_csv(b"\n".join([header, *rows]) + b"\n")
            frame.index = pd.RangeIndex(position + 1, position + len(frame) + 1, name="row")
            if scorer is None:
                found = prepare(frame, profile=profile).profile
                model = model_for(found)
                model.check_profile(found)
                scorer = StreamScorer(model, known=known, learn=True)
                scorer.state = carried
            scored = scorer.score(frame)
            if keep is not None:
                keep(scored, position, position + len(frame), scorer.state)
            position += len(frame)
            result = scored.frame
            write_csv(result, out, header=done.rows == 0)
            out.flush()
            done.rows += len(result)
            done.flagged += int(result["is_anomaly"].sum())
    return done
