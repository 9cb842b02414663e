"""Reading and scoring a file: the use cases that need no database.

Kept apart from ``app.services`` so that ``vigil score`` without ``--save`` or
``--model`` starts without importing SQLAlchemy, Alembic and Jinja2 (0.7 s of startup);
``app.services`` builds on these functions and re-exports them for the pages.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from detection import Dataset, Model, ScoredFrame, fit_score, prepare, read_csv
from detection.export import write_csv
from detection.reading import Source, read_pieces
from detection.stream import StreamScorer

# Rows read, scored and written at a time when a registered model scores a sensor or
# generic file: the memory of a quarter-million-row file, whatever the file's size.
PIECE_ROWS = 250_000


def file_sha256(source: Source) -> str:
    data = Path(source).read_bytes() if isinstance(source, str | Path) else bytes(source)
    return hashlib.sha256(data).hexdigest()


def read_dataset(source: Source, *, profile: str = "auto",
                 columns: dict[str, str | None] | None = None) -> Dataset:
    """Read and validate a CSV (path, bytes or binary file)."""
    return prepare(read_csv(source), profile=profile, columns=columns)


def analyze(dataset: Dataset, *, model: Model | None = None,
            detector: str = "isolation_forest", **params) -> ScoredFrame:
    """Score a dataset with a fitted model, or fit one on the dataset itself and score it."""
    if model is not None:
        return model.score(dataset)
    return fit_score(dataset, detector=detector, **params)[1]


@dataclass
class PiecesScored:
    """What scoring a file in pieces found, for the closing lines."""

    profile: str = ""
    rows: int = 0
    flagged: int = 0
    threshold_note: str = ""
    warnings: list[str] = field(default_factory=list)


def first_piece(path: Path, *, profile: str = "auto", rows: int = PIECE_ROWS) -> Dataset:
    """The file's first piece, read and checked: its profile is the file's."""
    return prepare(next(read_pieces(path, rows)), profile=profile)


def score_in_pieces(path: Path, model: Model, out: BinaryIO, *,
                    rows: int = PIECE_ROWS) -> PiecesScored:
    """Score a sensor or generic file with a registered model ``rows`` rows at a time,
    writing each piece's rows with their score columns to ``out`` as CSV: the scores of
    one pass (detection.stream), in the memory of one piece."""
    scorer = StreamScorer(model)
    done = PiecesScored(profile=model.profile)
    for piece in read_pieces(path, rows):
        result = scorer.score(piece)
        write_csv(result.frame, out, header=done.rows == 0)
        done.rows += len(result.frame)
        done.flagged += int(result.frame["is_anomaly"].sum())
        done.threshold_note = result.threshold_note
        done.warnings.extend(w for w in result.warnings if w not in done.warnings)
    return done


def scores_in_pieces(model: Model | None, profile: str) -> bool:
    """Whether a file is scored in pieces: by a registered sensor or generic model (login
    files are read whole: their users' histories are most of the memory anyway)."""
    return model is not None and model.profile == profile and profile in ("sensor", "generic")
