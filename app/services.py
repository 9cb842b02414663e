"""Use cases shared by the CLI and the dashboard: read, analyze, train, list models.

No streamlit here: pages and the CLI both call these functions, so there is one path
for each thing Vigil does.
"""

from __future__ import annotations

from app.settings import Settings, get_settings
from detection import Dataset, Model, ScoredFrame, fit, fit_score, prepare, read_csv
from detection.reading import Source
from storage import model_files


def read_dataset(source: Source, *, profile: str = "auto",
                 columns: dict[str, str | None] | None = None) -> Dataset:
    """Read and validate a CSV (path, bytes or binary file)."""
    return prepare(read_csv(source), profile=profile, columns=columns)


def analyze(dataset: Dataset, *, model_version: str | None = None,
            detector: str = "isolation_forest", settings: Settings | None = None,
            **params) -> ScoredFrame:
    """Score a dataset: with a saved model, or fitted on the dataset itself."""
    if model_version:
        model = load_model(model_version, settings=settings)
        return model.score(dataset)
    return fit_score(dataset, detector=detector, **params)[1]


def train(dataset: Dataset, *, detector: str = "isolation_forest",
          settings: Settings | None = None, **params) -> Model:
    """Fit a model on a baseline of normal history and save it."""
    settings = settings or get_settings()
    model = fit(dataset, detector=detector, **params)
    model_files.save_model(model, folder=settings.model_dir)
    return model


def list_models(*, settings: Settings | None = None) -> list[dict]:
    return model_files.list_models(folder=(settings or get_settings()).model_dir)


def load_model(version: str, *, settings: Settings | None = None) -> Model:
    return model_files.load_model(version, folder=(settings or get_settings()).model_dir)
