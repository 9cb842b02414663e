"""Scoring a file, or a stream of rows, in pieces with a fitted model.

A sensor reading's features look back at its entity's recent readings (the moving
window, the previous reading, how long the same value has repeated), so each piece is
scored with the rows it needs from before it: for every entity, the last
``2 x window`` rows (the window of medians a deviation is measured in) and, when a
reading has been repeating longer, every row of that run. The pieces then get exactly
the scores, flags and reasons one pass over the whole file gives, in memory bounded by
the piece and the carried rows, as long as each entity's rows come in time order. (One
difference remains: a value missing before an entity's first reading is filled with the
entity's median in the piece it arrives in, where one pass takes the whole file's.)

Generic files carry their last row (a missing value is filled from the previous one).
Login features count a user's whole history: a login stream carries it as a few
weighted rows per user (LoginFeatures.stream_state), which score later events as the
whole history would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd

from detection.dataset import Dataset, prepare
from detection.errors import ParameterError
from detection.model import Model, ScoredFrame

PIECEWISE_PROFILES = ("sensor", "generic", "login")


class StreamScorer:
    """Scores successive pieces of rows as one file.

    Parameters
    ----------
    model : Model
        A fitted sensor or generic model.
    columns : dict, optional
        Role -> column overrides, as for :func:`detection.prepare`.
    known : callable, optional
        Logins: gives each piece's dataset with the values analysts marked as known for
        its users (``Dataset.known``), read afresh for every piece.
    """

    def __init__(self, model: Model, columns: dict[str, str | None] | None = None,
                 known: Callable[[Dataset], Dataset] | None = None):
        if model.profile not in PIECEWISE_PROFILES:
            raise ParameterError(f"{model.profile} files are scored whole")
        self.model = model
        self.columns = columns
        self.known = known
        # Sensor and generic: rows as read, metrics as filled; login: the history state.
        self.carried: pd.DataFrame | None = None

    def score(self, piece: pd.DataFrame) -> ScoredFrame:
        """Score the next rows (as :func:`detection.read_csv` returns them: index = data
        row numbers, continuing from the previous piece)."""
        if self.model.profile == "login":
            return self._score_logins(piece)
        rows = piece if self.carried is None else pd.concat([self.carried, piece])
        dataset = prepare(rows, profile=self.model.profile, columns=self.columns)
        result = self.model.score(dataset)
        self.carried = self._carry(dataset.with_constant_metrics())
        index = piece.index
        return replace(result, frame=result.frame.loc[index],
                       features=result.features.loc[index],
                       time=None if result.time is None else result.time.loc[index])

    def _score_logins(self, piece: pd.DataFrame) -> ScoredFrame:
        featurizer = self.model.featurizer
        state = featurizer.stream_state() if self.carried is None else self.carried
        dataset = prepare(piece, profile="login", columns=self.columns)
        if self.known is not None:
            dataset = self.known(dataset)
        features, self.carried = featurizer.transform_after(dataset, state)
        return self.model.score(dataset, features)

    def _carry(self, dataset) -> pd.DataFrame:
        """The rows the next piece needs, as read but with their metrics as filled."""
        if self.model.profile == "generic":
            kept = np.array([len(dataset) - 1])
        else:
            kept = self._recent_rows(dataset)
        frame = dataset.frame.iloc[kept].copy()
        frame[list(dataset.metrics.columns)] = dataset.metrics.iloc[kept]
        return frame

    def _recent_rows(self, dataset) -> np.ndarray:
        """Positions of each entity's last 2 x window rows, and of every row of a run of
        the same reading still going on (the repeat feature counts back to its start)."""
        window = self.model.featurizer.window
        codes = dataset.entity_codes[0]
        order = np.lexsort((dataset.time.to_numpy(), codes))
        values = dataset.metrics.to_numpy()[order]
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        keep = []
        for start, end in zip(np.r_[0, bounds], np.r_[bounds, len(order)], strict=True):
            block = values[start:end]
            changed = block[1:] != block[:-1]  # per metric, where the reading changed
            runs = [int(np.flatnonzero(column)[-1]) + 1 if column.any() else 0
                    for column in changed.T]
            first = min(max(0, end - start - 2 * window), *runs)
            keep.append(order[start + first:end])
        return np.sort(np.concatenate(keep))
