"""Vigil's detection engine: read, validate, featurize, score and explain.

Typical use::

    frame = read_csv("readings.csv")
    dataset = prepare(frame)                 # profile detected, columns mapped
    model, result = fit_score(dataset)       # fit on the file itself and score it
    model = fit(prepare(read_csv("normal.csv")))
    result = model.score(dataset)            # score with a model fitted on a baseline
"""

from importlib import import_module

# Each public name and the module that holds it. Imported on first use (PEP 562), so
# `import detection.errors` or `vigil --help` does not pay for pandas and scikit-learn.
_HOMES = {
    "PROFILES": "detection.names",
    "SCORE_COLUMNS": "detection.columns",
    "ColumnMapping": "detection.columns",
    "map_columns": "detection.columns",
    "SEVERITIES": "detection.calibration",
    "Dataset": "detection.dataset",
    "prepare": "detection.dataset",
    "DetectionError": "detection.errors",
    "Model": "detection.model",
    "ScoredFrame": "detection.model",
    "fit": "detection.model",
    "fit_score": "detection.model",
    "read_csv": "detection.reading",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'detection' has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
