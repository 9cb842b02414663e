"""Vigil's detection engine: read, validate, featurize, score and explain.

Typical use::

    frame = read_csv("readings.csv")
    dataset = prepare(frame)                 # profile detected, columns mapped
    model, result = fit_score(dataset)       # fit on the file itself and score it
    model = fit(prepare(read_csv("normal.csv")))
    result = model.score(dataset)            # score with a model fitted on a baseline
"""

from detection.calibration import SEVERITIES
from detection.columns import SCORE_COLUMNS, ColumnMapping, map_columns
from detection.dataset import PROFILES, Dataset, prepare
from detection.errors import DetectionError
from detection.model import Model, ScoredFrame, fit, fit_score
from detection.reading import read_csv

__all__ = [
    "PROFILES",
    "SCORE_COLUMNS",
    "SEVERITIES",
    "ColumnMapping",
    "Dataset",
    "DetectionError",
    "Model",
    "ScoredFrame",
    "fit",
    "fit_score",
    "map_columns",
    "prepare",
    "read_csv",
]
