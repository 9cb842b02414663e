"""Scoring a file, or a stream of rows, in pieces with a fitted model.

A sensor reading's features look back at its entity's recent readings (the moving
window, the previous reading, how long the same value has repeated), so each piece is
scored with the rows it needs from before it: for every entity, the last
``2 x window`` rows (the window of medians a deviation is measured in) and, when a
reading has been repeating longer, every row of that run. The pieces then get exactly
the scores, flags and reasons one pass over the whole file gives, in memory bounded by
the piece and the carried rows, as long as each entity's rows come in time order. (One
difference remains: a value missing before an entity's first reading is filled with the
entity's median in the piece it arrives in, where one pass takes the whole file's.) A
row that repeats a carried reading (a batch sent again) gets the scores that reading got:
the carried rows keep them.

With ``learn`` (the live path), sensor rows are scored by the detector that keeps
learning (:meth:`Model.score_live`): what it carries is its own state, each entity's
recent readings and deviations.

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

from detection.columns import SCORE_COLUMNS
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
    learn : bool, default False
        Sensor rows: score with the detector that keeps learning (the live path) rather
        than the model's fixed baseline.
    """

    def __init__(self, model: Model, columns: dict[str, str | None] | None = None,
                 known: Callable[[Dataset], Dataset] | None = None, learn: bool = False):
        if model.profile not in PIECEWISE_PROFILES:
            raise ParameterError(f"{model.profile} files are scored whole")
        self.model = model
        self.columns = columns
        self.known = known
        self.learn = learn and model.profile == "sensor"
        # Sensor and generic: rows as read, metrics as filled, and the scores they got;
        # login: the history state.
        self.carried: pd.DataFrame | None = None
        self.learning: dict | None = None  # learn: the learner's state (None: the model's)

    def score(self, piece: pd.DataFrame) -> ScoredFrame:
        """Score the next rows (as :func:`detection.read_csv` returns them: index = data
        row numbers, continuing from the previous piece)."""
        if self.model.profile == "login":
            return self._score_logins(piece)
        if self.learn:
            judged = self._score_fixed(piece)
            dataset = prepare(piece, profile="sensor", columns=self._columns(piece))
            result, self.learning = self.model.score_live(dataset, self.learning, judged)
            return result
        return self._score_fixed(piece)

    @property
    def state(self) -> dict:
        """What the next piece needs, for a checkpoint (:attr:`carried`, and with
        ``learn`` the learner's state)."""
        return {"carried": self.carried, "learning": self.learning}

    @state.setter
    def state(self, state: dict | pd.DataFrame | None) -> None:
        if state is None or isinstance(state, pd.DataFrame):  # a checkpoint from before
            state = {"carried": state, "learning": None}
        self.carried, self.learning = state["carried"], state["learning"]

    def _score_fixed(self, piece: pd.DataFrame) -> ScoredFrame:
        """Sensor and generic rows scored against the model's fixed baseline."""
        carried = self.carried.drop(columns=list(SCORE_COLUMNS), errors="ignore") \
            if self.carried is not None else None
        rows = piece if carried is None else pd.concat([carried, piece])
        dataset = prepare(rows, profile=self.model.profile, columns=self._columns(rows))
        result = self.model.score(dataset)
        # The piece's rows are the last ones (after the carried): a slice, not a copy.
        ours = slice(len(rows) - len(piece), None)
        frame = result.frame.iloc[ours]
        if self.model.profile == "sensor" and carried is not None:
            frame = self._as_carried(frame, dataset, len(carried))
        self.carried = self._carry(dataset.with_constant_metrics(), frame)
        return replace(result, frame=frame, features=result.features.iloc[ours],
                       time=None if result.time is None else result.time.iloc[ours])

    def _columns(self, rows: pd.DataFrame) -> dict[str, str | None] | None:
        """The overrides, with the machine column the model was trained with where the
        rows have it: a few rows cannot show which column tells the machines apart."""
        column = getattr(self.model.featurizer, "entity_column_", None)
        if column is None or column not in rows.columns or "entity" in (self.columns or {}):
            return self.columns
        return {**(self.columns or {}), "entity": column}

    def _as_carried(self, frame: pd.DataFrame, dataset: Dataset, carried: int) -> pd.DataFrame:
        """The piece's scores, where a row repeats a carried reading: that reading's."""
        order, place = dataset.readings
        first = order[place[carried:]]  # each piece row's reading, as its first row
        again = first < carried
        known = self._carried_scores()
        if not again.any() or known is None:
            return frame
        frame = frame.copy()
        for column in SCORE_COLUMNS:
            frame.loc[frame.index[again], column] = known[column].iloc[first[again]].to_numpy()
        return frame

    def _carried_scores(self) -> pd.DataFrame | None:
        """The scores the carried rows got; None without carried rows, or from a
        checkpoint saved before carried rows kept their scores."""
        if self.carried is None or not set(SCORE_COLUMNS) <= set(self.carried.columns):
            return None
        return self.carried[list(SCORE_COLUMNS)]

    def _score_logins(self, piece: pd.DataFrame) -> ScoredFrame:
        featurizer = self.model.featurizer
        state = featurizer.stream_state() if self.carried is None else self.carried
        dataset = prepare(piece, profile="login", columns=self.columns)
        if self.known is not None:
            dataset = self.known(dataset)
        features, self.carried = featurizer.transform_after(dataset, state)
        return self.model.score(dataset, features)

    def _carry(self, dataset, scored: pd.DataFrame) -> pd.DataFrame:
        """The rows the next piece needs, as read but with their metrics as filled, and
        the scores each got (``scored``: the piece's)."""
        if self.model.profile == "generic":
            kept = np.array([len(dataset) - 1])
        else:
            kept = self._recent_rows(dataset)
        # A file scored before brings score columns of its own: the carried ones are these.
        frame = dataset.frame.iloc[kept].drop(columns=list(SCORE_COLUMNS), errors="ignore")
        frame[list(dataset.metrics.columns)] = dataset.metrics.iloc[kept]
        scores = scored[list(SCORE_COLUMNS)]
        if (earlier := self._carried_scores()) is not None:
            scores = pd.concat([earlier, scores])
        return frame.join(scores.loc[~scores.index.duplicated(keep="last")], how="left")

    def _recent_rows(self, dataset) -> np.ndarray:
        """Positions of each entity's last 2 x window readings, and of every reading of a
        run of the same value still going on (the repeat feature counts back to its start);
        a row repeating an earlier one is its reading (``Dataset.readings``)."""
        window = self.model.featurizer.window
        codes = dataset.entity_codes[0]
        order = dataset.readings[0]
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
