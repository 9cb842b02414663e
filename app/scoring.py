"""Reading and scoring a file: the use cases that need no database.

Kept apart from ``app.services`` so that ``vigil score`` without ``--save`` or
``--model`` starts without importing SQLAlchemy, Alembic and Jinja2 (0.7 s of startup);
``app.services`` builds on these functions and re-exports them for the pages.
"""

from __future__ import annotations

import glob
import hashlib
import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from detection import Dataset, Model, ScoredFrame, fit, fit_score, memory, prepare
from detection.envelope import STALE_WARNING, Drift
from detection.errors import DetectionError
from detection.export import write_csv
from detection.reading import Source, is_parquet, read_pieces, read_table
from detection.stream import StreamScorer


class DatasetError(DetectionError):
    """A folder or glob that names no data file, or files that do not make one table."""


# Rows read, scored and written at a time when a registered model scores a sensor or
# generic file: the memory of a quarter-million-row file, whatever the file's size.
PIECE_ROWS = 250_000
# The profiles whose files are read in pieces (login files are read whole: their users'
# histories are most of the memory anyway).
PIECES_PROFILES = ("sensor", "generic")


def file_sha256(source: Source) -> str:
    data = Path(source).read_bytes() if isinstance(source, str | Path) else bytes(source)
    return hashlib.sha256(data).hexdigest()


# -- datasets: a file, or a folder or glob of CSV and Parquet files read as one -------
DATA_SUFFIXES = (".csv", ".parquet", ".pq", ".tsv", ".txt")


def dataset_files(spec: str | Path) -> list[Path]:
    """The files ``spec`` names: a file; a folder (its CSV and Parquet files, by name); or
    a glob (``logs/2026-*.parquet``), in name order."""
    path = Path(spec)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)
        if not found:
            raise DatasetError(f"{spec}: no CSV or Parquet files in this folder")
        return found
    if any(c in str(spec) for c in "*?["):
        found = sorted(Path(p) for p in glob.glob(str(spec)) if Path(p).is_file())
        if not found:
            raise DatasetError(f"{spec}: no file matches")
        return found
    raise DatasetError(f"{spec}: no such file or folder")


def dataset_sha256(files: list[Path]) -> str:
    """A dataset's hash: of its files' hashes in order (one file: the file's own)."""
    return combined_sha256([file_sha256(f) for f in files])


def combined_sha256(digests: list[str]) -> str:
    """The hash of a dataset whose files hash to ``digests``, in order."""
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def dataset_name(spec: str | Path, files: list[Path]) -> str:
    return files[0].name if len(files) == 1 else str(spec)


def read_files(files: list[Path]) -> pd.DataFrame:
    """Files read one after the other as one table: row numbers continue from file to
    file, a file's warnings name it; each must have the first file's columns."""
    frames, warnings, before = [], [], 0
    for path in files:
        frame = read_table(path)
        if frames and set(frame.columns) != set(frames[0].columns):
            raise DatasetError(f"{path.name}: its columns ({', '.join(map(str, frame.columns))})"
                               f" differ from {files[0].name}'s "
                               f"({', '.join(map(str, frames[0].columns))})")
        if frames:
            frame = frame[list(frames[0].columns)]
        warnings += [f"{path.name}: {w}" if len(files) > 1 else w
                     for w in frame.attrs.pop("warnings", ())]
        frame.index = frame.index + before
        before = int(frame.index[-1]) if len(frame) else before
        frames.append(frame)
    frame = frames[0] if len(frames) == 1 else pd.concat(frames)
    frame.attrs["warnings"] = warnings
    return frame


def read_dataset(source: Source | list[Path], *, profile: str = "auto",
                 columns: dict[str, str | None] | None = None) -> Dataset:
    """Read and validate a CSV or Parquet file (path, bytes or binary file), or the files
    of a dataset (:func:`dataset_files`) as one."""
    frame = read_files(source) if isinstance(source, list) else read_table(source)
    return prepare(frame, profile=profile, columns=columns)


def analyze(dataset: Dataset, *, model: Model | None = None,
            detector: str = "isolation_forest", learn: bool = False, **params) -> ScoredFrame:
    """Score a dataset with a fitted model, or fit one on the dataset itself and score it;
    ``learn`` (sensor): as a live stream of it is scored, learning as it goes (from the
    model's baseline, or from the file's first reading)."""
    if model is not None:
        if learn:
            return model.score_live(dataset, None, model.score(dataset))[0]
        return model.score(dataset)
    result = fit_score(dataset, detector=detector, learn=learn, **params)[1]
    if len(dataset) >= memory.BIG_ROWS:  # the model fitted for the file is gone
        memory.release()
    return result


def scored_pieces(source: Source, model: Model, *, columns: dict[str, str | None] | None = None,
                  rows: int | None = None, learn: bool = False) -> Iterator[ScoredFrame]:
    """A sensor or generic file (path or bytes) scored by ``model`` ``rows`` rows at a
    time (default :data:`PIECE_ROWS`): the scores of one pass (detection.stream), in the
    memory of one piece; ``learn``: as a live stream of it is scored."""
    scorer = StreamScorer(model, columns, learn=learn)
    for piece in ahead(read_pieces(source, rows or PIECE_ROWS)):
        yield scorer.score(piece)


_END = object()


def ahead(items: Iterator) -> Iterator:
    """``items``, each next one taken on a thread while the caller works on the one
    before: a file's next piece is parsed (pandas' parser leaves the GIL) while this one
    is scored."""
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(next, items, _END)
        while (item := pending.result()) is not _END:
            pending = pool.submit(next, items, _END)
            yield item


@dataclass
class PieceNotes:
    """The warnings of a file scored in pieces, each once, and its drift from the model's
    baseline over all the pieces: one stale-model warning for the file, not one per piece.
    ``judged`` False: a model fitted on the file itself, which has no baseline to drift
    from (as a file scored whole by a model fitted on it)."""

    judged: bool = True
    found: list[str] = field(default_factory=list)
    drifts: list[Drift] = field(default_factory=list)

    def add(self, result: ScoredFrame) -> None:
        self.found += [w for w in result.warnings
                       if w not in self.found and not w.startswith(STALE_WARNING)]
        if self.judged and result.drift is not None:
            self.drifts.append(result.drift)

    @property
    def drift(self) -> Drift | None:
        return Drift.combine(self.drifts) if self.drifts else None

    @property
    def warnings(self) -> list[str]:
        drift = self.drift
        return self.found + ([drift.warning()] if drift is not None and drift.stale else [])


@dataclass
class PiecesScored:
    """What scoring a file in pieces found, for the closing lines."""

    profile: str = ""
    rows: int = 0
    flagged: int = 0
    threshold_note: str = ""
    notes: PieceNotes = field(default_factory=PieceNotes)

    @property
    def warnings(self) -> list[str]:
        return self.notes.warnings


def first_piece(source: Source, *, profile: str = "auto",
                columns: dict[str, str | None] | None = None, rows: int | None = None
                ) -> Dataset:
    """The file's first piece, read and checked: its profile is the file's."""
    return prepare(next(read_pieces(source, rows or PIECE_ROWS)), profile=profile,
                   columns=columns)


def score_in_pieces(path: Path, model: Model, out: BinaryIO, *,
                    rows: int | None = None, learn: bool = False,
                    fitted_on_file: bool = False) -> PiecesScored:
    """Score a sensor or generic file with a registered model (or one fitted on the file
    itself: ``fitted_on_file``) ``rows`` rows at a time, writing each piece's rows with
    their score columns to ``out`` as CSV."""
    done = PiecesScored(profile=model.profile, notes=PieceNotes(judged=not fitted_on_file))
    # Each piece is written on a thread while the next is scored, one at a time, in order.
    with ThreadPoolExecutor(1) as writer:
        written = None
        for result in scored_pieces(path, model, rows=rows, learn=learn):
            if written is not None:
                written.result()  # the piece before is out (or its error raised here)
            written = writer.submit(write_csv, result.frame, out, header=done.rows == 0)
            done.rows += len(result.frame)
            done.flagged += int(result.frame["is_anomaly"].sum())
            done.threshold_note = result.threshold_note
            done.notes.add(result)
        if written is not None:
            written.result()
    return done


def fits_in_pieces(rows: int, profile: str) -> bool:
    """Whether a file of ``rows`` rows (about) fitted on itself is read, fitted and
    scored in pieces (:func:`fit_on_stretches`, then :func:`scored_pieces`) rather than
    read whole: a sensor or generic file of more than :data:`WHOLE_ROWS` rows."""
    return rows > WHOLE_ROWS and profile in PIECES_PROFILES


def scores_in_pieces(model: Model | None, profile: str) -> bool:
    """Whether a file is scored in pieces: by a registered sensor or generic model."""
    return model is not None and model.profile == profile and profile in PIECES_PROFILES


# -- big uploads (the Analyze page) ---------------------------------------------------
# An upload of more rows than this is read, fitted and scored in pieces: reading and
# featurizing a file whole takes about 7 times its size, in pieces a bounded amount.
WHOLE_ROWS = 1_000_000
# "Fit on this file" for a big file: the model learns from this many of its rows, in
# stretches spread evenly over the file (each stretch long enough for the windowed
# features; many stretches, so that a file sorted by machine gives every machine some).
FIT_ROWS = 1_000_000
FIT_STRETCHES = 20


COUNT_BYTES = 1 << 24  # a file's lines are counted this many bytes at a time


def estimated_rows(source: bytes | str | Path) -> int:
    """The data rows of a file (a path, or an upload's bytes): a Parquet file's as its
    footer says; a CSV's counted as lines (a quoted line break counts twice: this decides
    how to read a file, it is not a figure to show as exact)."""
    if is_parquet(source):
        import pyarrow.parquet as pq

        opened = io.BytesIO(source) if isinstance(source, bytes) else source
        return pq.ParquetFile(opened).metadata.num_rows
    if isinstance(source, bytes):
        return max(source.count(b"\n") - 1 + (not source.endswith(b"\n")), 0)
    lines, last = 0, b"\n"
    with open(source, "rb") as raw:
        while chunk := raw.read(COUNT_BYTES):
            lines, last = lines + chunk.count(b"\n"), chunk[-1:]
    return max(lines - 1 + (last != b"\n"), 0)


def stretches_note(rows: int) -> str:
    """What a model fitted on a big file (:func:`fit_on_stretches`) learned from."""
    return (f"This file has about {rows:,} rows: the model fitted on it learned from "
            f"{FIT_ROWS:,} of them, in {FIT_STRETCHES} stretches spread over the file, "
            "and then scored every row.")


def fit_on_stretches(source: Source, *, rows: int, profile: str,
                     columns: dict[str, str | None] | None = None,
                     detector: str = "isolation_forest", **params) -> Model:
    """A model fitted on :data:`FIT_ROWS` of a big file's ``rows`` (about) rows, read as
    :data:`FIT_STRETCHES` stretches spread evenly from its first rows to its last."""
    size = max(FIT_ROWS // FIT_STRETCHES, 1)
    count = -(-rows // size)
    wanted = set(np.linspace(0, count - 1, min(FIT_STRETCHES, count)).round().astype(int))
    stretches = [piece for i, piece in enumerate(read_pieces(source, size)) if i in wanted]
    # Stretches of the file to be scored, not normal history: cut as fit_score cuts.
    return fit(prepare(pd.concat(stretches), profile=profile, columns=columns),
               detector=detector, normal=False, **params)
