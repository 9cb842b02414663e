"""Reading and scoring a file: the use cases that need no database.

Kept apart from ``app.services`` so that ``vigil score`` without ``--save`` or
``--model`` starts without importing SQLAlchemy, Alembic and Jinja2 (0.7 s of startup);
``app.services`` builds on these functions and re-exports them for the pages.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from detection import Dataset, Model, ScoredFrame, fit_score, prepare, read_csv
from detection.reading import Source


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
