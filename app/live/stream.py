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

import hashlib
import os
import selectors
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd

import detection.forest_kernel  # noqa: F401 - runs for long: the compiled forest walk, loaded once
import detection.learning_kernel  # noqa: F401 - and the live learner's (shapes, tails)
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


def _files(batch: list[bytes], header: bytes) -> Iterator[tuple[bool, list[bytes]]]:
    """The batch's rows in runs of one input file each: (whether a new file starts, its
    rows). A rotated file starts with the header again; the header is no row."""
    start, new = 0, False
    for i, line in enumerate(batch):
        if line == header:
            if i > start or new:
                yield new, batch[start:i]
            start, new = i + 1, True
    if len(batch) > start or new:
        yield new, batch[start:]


def _line_id(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def stream(batches: Iterator[list[bytes]], model_for: Callable[[str], Model], out: BinaryIO,
           *, profile: str = "auto", batch_rows: int = BATCH_ROWS, stored: int = 0,
           carried: dict | None = None, keep: Keep | None = None,
           known: Callable[[Dataset], Dataset] | None = None) -> Streamed:
    """Score each batch of lines (the first line is the header) and write the scored
    rows to ``out`` as CSV as soon as they are scored. ``model_for(profile)`` gives the
    model once the first rows tell the profile (or ``profile`` is given).

    A restart passes the checkpoint: ``stored`` rows were stored before (the next rows
    are numbered after them) and ``carried`` is what they left (``StreamScorer.state``,
    with ``input``: the first row of the input file being read then and how many of its
    rows were stored). The input is passed over as far as it is that file again (a
    resend, or the same file followed on); a file that starts otherwise (a log rotated
    while the stream was stopped) is new, and every row of it is scored. ``keep`` (the
    result, first and last row position, the state to carry on) stores each batch
    before its rows are written out. ``known`` adds analysts' known values to each batch
    of logins (:func:`app.services.with_known`).
    """
    carried = carried if isinstance(carried, dict) else {"carried": carried, "learning": None}
    # Where the input was; a checkpoint from before files were told apart: a count.
    resume = carried.get("input") or ({"first": None, "rows": stored} if stored else None)
    scorer = None
    done, header, position = Streamed(), None, stored
    first, in_file, passing = None, 0, 0
    for batch in batches:
        batch = [line for line in batch if line.strip()]
        if header is None and batch:
            header, batch = batch[0], batch[1:]
            if holds_values(header):  # each batch is read with it, and restarts find it
                raise MalformedCsvError("the stream's first line holds values: a stream "
                                        "starts with a header line naming its columns")
        for new_file, rows_of_file in _files(batch, header):
            if new_file:  # rotated: a file of its own, never one stored before
                first, in_file, passing, resume = None, 0, 0, None
            if first is None and rows_of_file:
                first = _line_id(rows_of_file[0])
                if resume is not None and resume["first"] in (None, first):
                    passing = resume["rows"]
                resume = None
            passed = min(len(rows_of_file), max(0, passing - in_file))
            in_file += passed
            rows_of_file = rows_of_file[passed:]
            for start in range(0, len(rows_of_file), batch_rows):
                rows = rows_of_file[start:start + batch_rows]
                frame = read_csv(b"\n".join([header, *rows]) + b"\n")
                frame.index = pd.RangeIndex(position + 1, position + len(frame) + 1,
                                            name="row")
                if scorer is None:
                    found = prepare(frame, profile=profile).profile
                    model = model_for(found)
                    model.check_profile(found)
                    scorer = StreamScorer(model, known=known, learn=True)
                    scorer.state = carried
                scored = scorer.score(frame)
                in_file += len(frame)
                if keep is not None:
                    keep(scored, position, position + len(frame),
                         {**scorer.state, "input": {"first": first, "rows": in_file}})
                position += len(frame)
                result = scored.frame
                write_csv(result, out, header=done.rows == 0)
                out.flush()
                done.rows += len(result)
                done.flagged += int(result["is_anomaly"].sum())
    return done
