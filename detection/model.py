"""Fit a model on a baseline, score any file of the same profile, save and load it."""

from __future__ import annotations

import hashlib
import io
import platform
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as installed_version

import joblib
import numpy as np
import pandas as pd
import pyarrow as pa

from detection import memory
from detection.calibration import FLAG_SCORE, Calibration, severity
from detection.columns import SCORE_COLUMNS, ColumnMapping
from detection.dataset import Dataset
from detection.detectors import TAIL_SHARE, make_detector, tail_cut
from detection.envelope import EDGE_SHARE, FLAG_SHARE, REACH_FLAG, Drift, Envelope
from detection.errors import (
    ModelMismatchError,
    NoNumericColumnError,
    ParameterError,
    TooFewRowsError,
)
from detection.features import FEATURIZERS
from detection.features.base import trained_metrics
from detection.learning import HISTORY, QUIET, WINDOW, Learner
from detection.learning import METHOD as LEARNING_METHOD

MIN_FIT_ROWS = 20
# A baseline's parts, each scored by a model of the others to check the cut-off
# (_held_out_cut): a sensor baseline's stretches (equal spans of time), from this many
# distinct times up; a generic baseline's rows dealt at random, from this many rows up
# (fewer: too few rows to tell).
HELD_OUT_FOLDS = 5
MIN_HELD_OUT_TIMES = 1000
MIN_HELD_OUT_ROWS = 100
# A generic baseline's rows held out in a part, at most: 25,000 held-out rows pooled place
# the tail, and a model of the other four parts learns from 20,000 (its trees sample 256
# rows each, its nearest rows 1,000): a million-row baseline trains in 4.5 s, not 3.2 s.
HELD_OUT_ROWS = 5_000
REFERENCE_ROWS = 100_000  # of a part's model's own rows (evenly spaced) it is judged by
DEFAULT_DETECTOR = "isolation_forest"
# Share of baseline rows flagged when the caller does not say. Chosen on the labelled
# samples and NAB (bench/quality.py): attacks on logins come in bursts of many rows.
DEFAULT_CONTAMINATION = {"sensor": 0.015, "generic": 0.015, "login": 0.02}
# Nearest baseline rows beside the forest (detection.neighbours). Sensor and login
# features are judged by their own rules (the envelope, decisive features); on tabular
# data a row between dense clusters is what the forest misses.
DEFAULT_NEIGHBOURS = {"generic": 10}


LEARNING_NOTE = (f"Rows scoring above {FLAG_SCORE:g} are flagged. Scored live, learning as "
                 f"it goes ({LEARNING_METHOD}): a score of {FLAG_SCORE:g} is a deviation "
                 "one tail step beyond the 99th percentile of the entity's own recent "
                 "deviations.")

HASH_ROWS = 65_536  # rows converted to Arrow at a time while hashing


class _HashSink:
    """A write-only file that feeds sha256 (the IPC stream is never held whole)."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.closed = False

    def write(self, data) -> int:
        self.digest.update(data)
        return len(data)

    def flush(self) -> None:
        pass


def _text_where_mixed(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns holding numbers and text (pieces of a file read apart and joined: one read
    a column as numbers, another as text) with the numbers as text, which Arrow takes."""
    mixed = [i for i, (_, column) in enumerate(frame.items()) if column.dtype == object
             and pd.api.types.infer_dtype(column, skipna=True).startswith("mixed")]
    if not mixed:
        return frame
    frame = frame.copy(deep=False)
    for i in mixed:
        column = frame.iloc[:, i]
        frame.isetitem(i, column.where(column.isna(), column.astype(str)))
    return frame


def data_hash(frame: pd.DataFrame) -> str:
    """sha256 of a frame's content: column names, types and values, not its index.

    The frame is hashed as an Arrow IPC stream of fixed-size row batches with the pandas
    metadata left out, so how pandas happened to split or index it does not change the
    hash; batches are converted and hashed one at a time, in bounded memory.
    """
    frame = _text_where_mixed(frame)
    # One schema for every batch: a text column empty in one batch keeps its type.
    schema = pa.Schema.from_pandas(frame, preserve_index=False).remove_metadata()
    sink = _HashSink()
    with pa.ipc.new_stream(pa.PythonFile(sink, mode="w"), schema) as writer:
        for start in range(0, len(frame), HASH_ROWS):
            batch = frame.iloc[start:start + HASH_ROWS]
            writer.write_table(pa.Table.from_pandas(batch, schema=schema, preserve_index=False)
                               .replace_schema_metadata(None).combine_chunks())
    return sink.digest.hexdigest()


def new_version_id(created: datetime) -> str:
    return f"{created:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass
class ScoredFrame:
    """The file's rows in file order with the four score columns added.

    ``threshold`` is the flag cut-off on the 0–100 scale; ``features`` the matrix the
    detector saw (index = data row number), kept for charts and explanations.
    """

    frame: pd.DataFrame
    profile: str
    detector: str
    threshold: float
    threshold_note: str
    features: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    model_version: str | None = None  # a registered model's version; None when fitted on the file
    parameters: dict = field(default_factory=dict)
    mapping: ColumnMapping = field(default_factory=ColumnMapping)
    time: pd.Series | None = None
    metrics: tuple[str, ...] = ()
    drift: Drift | None = None  # scored by a registered model: how far from its baseline

    @property
    def anomalies(self) -> pd.DataFrame:
        return self.frame[self.frame["is_anomaly"] == 1]

    @property
    def entity_column(self) -> str | None:
        """The column naming who or what a row is about: the user of a login, the sensor."""
        return self.mapping.user if self.profile == "login" else self.mapping.entity


@dataclass
class Model:
    """A fitted featurizer + detector + calibration, with the metadata DESIGN.md lists."""

    profile: str
    featurizer: object
    detector: object
    calibration: Calibration
    metadata: dict
    envelope: Envelope | None = None
    # Sensor models: what the live detector that keeps learning (detection.learning)
    # knows after the baseline, so a stream starts from it; None for a model saved before.
    learning: dict | None = None

    @property
    def version(self) -> str:
        return self.metadata["version"]

    def _detector_input(self, dataset: Dataset, features) -> tuple[np.ndarray, list[str]]:
        """The matrix the detector reads, and its column names."""
        if self.metadata["detector"] == DEFAULT_DETECTOR:
            return features.X.to_numpy(), list(features.X.columns)
        levels = self.featurizer.level_columns(dataset, features)
        return levels.to_numpy(dtype="float64"), list(levels.columns)

    def check_profile(self, profile: str) -> None:
        """Refuse a file read as another profile than the model's."""
        if profile != self.profile:
            raise ModelMismatchError(
                f"model {self.version} scores {self.profile} files; this file was read as "
                f"{profile} (choose a {profile} model, or fit on the file)"
            )

    def score(self, dataset: Dataset, features=None) -> ScoredFrame:
        """Score every row of ``dataset`` with this model (``features``: the featurizer's
        output for it, when the caller computed them, e.g. after a stream's state)."""
        self.check_profile(dataset.profile)
        dataset = dataset.with_constant_metrics()
        if features is None:
            features = self.featurizer.transform(dataset)
            _let_go(dataset)
        X, names = self._detector_input(dataset, features)
        result = self._result(dataset, features, self._bounded(
            self._scores(X, self.detector.score_samples(X)), features))
        result.warnings.extend(features.warnings)
        if self.envelope is not None:  # None: a model saved before drift was measured
            label = getattr(self.featurizer, "feature_label", str)
            result.drift = Drift.of(self.envelope, X, [label(name) for name in names])
            if result.drift.stale:
                result.warnings.append(result.drift.warning())
        return result

    def _scores(self, X: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """The 0-100 anomaly score of each row: the calibrated detector score, or the
        envelope's where a feature lies far outside the baseline (detection.envelope)."""
        scores = self.calibration.transform(raw)
        if self.envelope is None or self.metadata["detector"] != DEFAULT_DETECTOR:
            return scores  # a z-score's band is the whole rule; a model saved before
        return np.maximum(scores, self.envelope.score(X))

    def _bounded(self, scores: np.ndarray, features) -> np.ndarray:
        """``scores`` within what the featurizer's rules allow each row (a login after a
        burst of failures from a new place: at least critical; a reading of an entity's
        learning period: never critical)."""
        bounds = getattr(self.featurizer, "bounds", None)
        if bounds is None or self.metadata["detector"] != DEFAULT_DETECTOR:
            return scores
        floor, ceiling = bounds(features)
        if floor is not None:
            scores = np.maximum(scores, floor)
        if ceiling is not None:
            scores = np.minimum(scores, ceiling)
        return scores

    def score_live(self, dataset: Dataset, state: dict | None,
                   judged: ScoredFrame) -> tuple[ScoredFrame, dict]:
        """Score a sensor stream's next rows with the detector that keeps learning
        (:mod:`detection.learning`), after the rows ``state`` holds (None: after the
        baseline), given this model's fixed-baseline result for them (``judged``);
        returns the result and the state for the next rows."""
        self.check_profile(dataset.profile)
        if self.profile != "sensor":
            raise ModelMismatchError(f"only sensor streams are scored learning; "
                                     f"model {self.version} scores {self.profile} files")
        dataset = dataset.with_constant_metrics()
        trained_metrics(dataset, self.featurizer.metrics_)
        learner = Learner(self.featurizer.metrics_, judged=True,
                          spreads=self.featurizer.spreads)
        if state is None:
            state = self.learning
        fixed = judged.frame.loc[dataset.frame.index]
        learned, state = learner.score(dataset, state, fixed["anomaly_score"].to_numpy())
        model_reasons = fixed["reasons"].to_numpy(dtype=object)
        result = self._result(dataset, None, learned.scores, explain=lambda rows: (
            learner.reasons(dataset, learned, rows, model_reasons)))
        result.detector, result.threshold_note = "learning", LEARNING_NOTE
        result.parameters = {"window": WINDOW, "history": HISTORY, "quiet": QUIET}
        # How far the rows lie from the trained baseline, as the fixed path tells it: the
        # learner keeps the scores useful, but a model this far off wants retraining.
        result.drift = judged.drift
        result.warnings.extend(w for w in judged.warnings if w not in result.warnings)
        return result, state

    def _result(self, dataset: Dataset, features, scores: np.ndarray,
                explain=None) -> ScoredFrame:
        """The scored frame; ``explain(rows)`` gives the flagged rows' reasons (default:
        the featurizer's, from ``features``)."""
        _let_go(dataset)
        flagged = scores > FLAG_SCORE
        rows = np.flatnonzero(flagged)
        if explain is None:
            def explain(rows):
                return self.featurizer.explain(dataset, features, rows)
        reasons = explain(rows) if rows.size else []
        # Unflagged rows share the empty reason; text i + 1 is flagged row i's.
        texts = pd.array(["", *reasons], dtype="str")
        pick = np.zeros(len(scores), dtype="int64")
        pick[rows] = np.arange(1, rows.size + 1)
        columns = pd.DataFrame({
            "anomaly_score": np.round(scores, 2),
            "is_anomaly": flagged.astype("int8"),
            "severity": severity(scores),
            "reasons": texts.take(pick),
        }, index=dataset.frame.index)
        # One concat, not four inserts (a wide file would be fragmented block by block);
        # copy-on-write keeps the dataset as read.
        frame = dataset.frame
        stale = [c for c in SCORE_COLUMNS if c in frame.columns]  # a file scored before
        if stale:  # drop() costs half a millisecond even with nothing to drop
            frame = frame.drop(columns=stale)
        frame = pd.concat([frame, columns], axis=1)
        return ScoredFrame(
            frame=frame,
            profile=self.profile,
            detector=self.metadata["detector"],
            threshold=FLAG_SCORE,
            threshold_note=self.metadata["threshold_note"],
            features=features.X if features is not None else pd.DataFrame(
                index=dataset.frame.index),
            warnings=list(dataset.warnings),
            model_version=self.version,
            parameters=dict(self.metadata["parameters"]),
            mapping=dataset.mapping,
            time=dataset.time,
            metrics=() if dataset.metrics is None else tuple(dataset.metrics.columns),
        )

    # -- persistence ----------------------------------------------------------
    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        joblib.dump(self, buffer, compress=3)
        return buffer.getvalue()

    @staticmethod
    def from_bytes(data: bytes) -> Model:
        model = joblib.load(io.BytesIO(data))
        if not isinstance(model, Model):
            raise ModelMismatchError("the stored bytes are not a Vigil model")
        return model


def _let_go(dataset: Dataset) -> None:
    """Between a big file's steps (after its features, before its results): the freed
    working arrays' memory back to the system, so the next step does not come on top."""
    if len(dataset) >= memory.BIG_ROWS:
        memory.release(collect=False)


def _threshold_note(detector, params: dict, normal: bool, checked: bool = False,
                    reach: float = REACH_FLAG) -> str:
    if detector.name == DEFAULT_DETECTOR:
        share = params["contamination"]
        note = (f"Rows scoring above {FLAG_SCORE:g} are flagged: the cut-off is the score "
                f"that {share:.1%} of the baseline rows exceed (contamination {share:g})")
        if normal:
            note += (f", or higher where the baseline's own tail shows those rows are normal "
                     f"variation: about {TAIL_SHARE * share:.2%} of normal rows lie above it")
            if checked:
                note += (f" (of rows it did not learn from too: checked on "
                         f"{HELD_OUT_FOLDS} parts of the baseline, each scored by a model "
                         "of the others)")
        if params.get("neighbours"):
            note += (f". A row's score is the larger of the forest's and its distance to its "
                     f"{params['neighbours']} nearest baseline rows, each in units of its own "
                     "cut-off")
        return note + (f". A row {reach:.3g} times farther out on any one feature than "
                       f"the baseline's most extreme {EDGE_SHARE:.1%} is flagged too"
                       + (f" (as far as only {FLAG_SHARE:.1%} of the baseline's own rows lie)"
                          if reach > REACH_FLAG else "") + ".")
    return (f"Rows scoring above {FLAG_SCORE:g} are flagged: a value more than "
            f"{params['multiplier']:g} standard deviations from the mean.")


def _checkable(dataset: Dataset) -> bool:
    """Whether a baseline has the rows to check its cut-off on parts held out of it."""
    if dataset.profile == "sensor":
        return dataset.time.nunique() >= MIN_HELD_OUT_TIMES
    return dataset.profile == "generic" and len(dataset) >= MIN_HELD_OUT_ROWS


def _held_out_parts(dataset: Dataset, seed: int):
    """The baseline's parts as row masks (learn, held, seen): a model of the rows
    ``learn`` scores the rows ``held``, reading the rows ``seen`` to do so.

    A sensor baseline: ``HELD_OUT_FOLDS`` equal spans of time, the latest last, each seen
    with the readings before it (its first rows' windows look back), its model learned
    from all the other spans. A generic baseline's rows are alike whatever their order:
    ``HELD_OUT_FOLDS`` parts dealt at random, of at most ``HELD_OUT_ROWS`` rows each, its
    model learned from the other parts."""
    n = len(dataset)
    if dataset.profile == "generic":
        order = np.random.default_rng(seed).permutation(n)
        size = min(n // HELD_OUT_FOLDS, HELD_OUT_ROWS)
        dealt = np.full(n, -1)
        dealt[order[:size * HELD_OUT_FOLDS]] = np.arange(size * HELD_OUT_FOLDS) // size
        return [((dealt >= 0) & (dealt != k), dealt == k, dealt == k)
                for k in range(HELD_OUT_FOLDS)]
    time = dataset.time
    edges = time.quantile(np.linspace(0, 1, HELD_OUT_FOLDS + 1)).to_numpy()
    parts = []
    for first, end in zip(edges[:-1], edges[1:], strict=True):
        held = ((time >= first) & ((time < end) if end < edges[-1] else True)).to_numpy()
        parts.append((~held, held, (time <= end).to_numpy()))
    return parts


def _held_out_cut(dataset: Dataset, params: dict, window: int | None,
                  train_scores: np.ndarray) -> float:
    """The raw cut-off at which a baseline's rows, each scored by a model that did not
    learn from it, flag ``TAIL_SHARE`` x contamination: the forest and the baseline's
    statistics fit the rows they learned from closer than later rows, which then flagged
    twice the share meant (1.4% of normal weeks of 24-metric server data) or more (2.5-4%
    of later normal rows of ODDS' tabular sets with a baseline of 100-250 rows).

    Each of the baseline's parts (``_held_out_parts``) is scored by a model of others. A
    held-out row's exceedance is the share of that model's own rows (``REFERENCE_ROWS`` of
    them at most) scoring at least as high: a conformal p-value, uniform where the rows
    are like the learned ones, so its -log is exponential with scale 1; a heavier tail
    is the gap to be closed. The tail fitted to the -log exceedances gives the in-sample
    share that held-out rows exceed as often as the target share, for all parts pooled
    and, in a sensor baseline, for the latest stretch too (the nearest thing to the next
    file, scored by a model of the past); the stricter sets the cut-off. The latest fifth
    alone judged by a day and a half: one server in six flagged 1.3% of its next normal
    week; all stretches pooled alone missed what changes from week to week (another
    flagged 1.2% and 1.6% of two later weeks)."""
    surprise = []
    for learn, held, seen in _held_out_parts(dataset, params.get("random_state", 0)):
        model, _, learned, _ = _learn(dataset.rows(learn), DEFAULT_DETECTOR, params, window)
        own = np.sort(model.detector.score_samples(
            learned[:: max(1, len(learned) // REFERENCE_ROWS)]))
        part = dataset.rows(seen)
        X, _ = model._detector_input(part, model.featurizer.transform(part))
        scores = model.detector.score_samples(X[held[seen]])
        above = own.size - np.searchsorted(own, scores, side="left")
        surprise.append(-np.log((above + 1) / (own.size + 1)))
    target = TAIL_SHARE * model.detector.contamination
    share = np.exp(-tail_cut(np.concatenate(surprise), target))
    if dataset.profile == "sensor":
        share = min(share, np.exp(-tail_cut(surprise[-1], target)))
    return float(np.quantile(train_scores, 1 - share))


def _learn(dataset: Dataset, detector: str, params: dict, window: int | None):
    """A model's features and detector fitted on ``dataset``, before its cut-off: the
    model, the features, the detector's input and its feature names."""
    if dataset.profile != "login" and dataset.metrics is not None \
            and dataset.metrics.shape[1] == 0:
        raise NoNumericColumnError("every numeric column is constant: there is nothing to "
                                   "learn from (a registered model can still score this file)")
    if len(dataset) < MIN_FIT_ROWS:
        raise TooFewRowsError(
            f"the baseline has {len(dataset)} row(s); at least {MIN_FIT_ROWS} are needed to fit "
            "a model"
        )
    featurizer_cls = FEATURIZERS[dataset.profile]
    featurizer = featurizer_cls(window=window) if window and dataset.profile == "sensor" \
        else featurizer_cls()
    features = featurizer.fit_transform(dataset)
    _let_go(dataset)
    if detector == DEFAULT_DETECTOR and params.get("contamination") is None:
        params = {**params, "contamination": DEFAULT_CONTAMINATION[dataset.profile]}
    if detector == DEFAULT_DETECTOR and "neighbours" not in params:
        params = {**params, "neighbours": DEFAULT_NEIGHBOURS.get(dataset.profile, 0)}
    estimator = make_detector(detector, **params)
    # To the microsecond: `--model NAME` takes a name's newest version, and two fitted
    # within one second (a script's, or the tests') tied to the second.
    created = datetime.now(UTC)
    metadata = {
        "version": new_version_id(created),
        "created": created.isoformat(),
        "profile": dataset.profile,
        "detector": estimator.name,
        "parameters": {**estimator.get_params(), **({"window": window} if window else {})},
        "features": list(featurizer.feature_names_),
        "training_rows": len(dataset),
        "training_hash": data_hash(dataset.frame),
        # scikit-learn's version without importing it: a z-score model never needs it.
        "libraries": {"python": platform.python_version(),
                      "scikit-learn": installed_version("scikit-learn"),
                      "pandas": pd.__version__, "numpy": np.__version__},
    }
    model = Model(dataset.profile, featurizer, estimator, Calibration(0.0, 1.0, 1.0), metadata)
    X, names = model._detector_input(dataset, features)
    estimator.fit(X)
    return model, features, X, names


def _fit(dataset: Dataset, detector: str, params: dict, window: int | None, *, normal: bool):
    model, features, X, names = _learn(dataset, detector, params, window)
    estimator, featurizer, metadata = model.detector, model.featurizer, model.metadata
    train_scores = estimator.score_samples(X)
    threshold = estimator.threshold(train_scores, normal=normal)
    checked = normal and detector == DEFAULT_DETECTOR and _checkable(dataset)
    if checked:
        threshold = max(threshold, _held_out_cut(dataset, params, window, train_scores))
    model.calibration = Calibration.fit(train_scores, threshold, normal=normal)
    decisive = getattr(featurizer, "DECISIVE", ())
    model.envelope = Envelope().fit(X, [name in decisive for name in names], normal=normal)
    metadata["threshold"] = {"score": FLAG_SCORE, "raw": threshold}
    metadata["threshold_note"] = _threshold_note(estimator, estimator.get_params(), normal,
                                                 checked, model.envelope.flag)
    return model, features, model._scores(X, train_scores), train_scores


def fit(dataset: Dataset, *, detector: str = DEFAULT_DETECTOR, window: int | None = None,
        normal: bool = True, **params) -> Model:
    """Fit a model on a baseline of normal history.

    Parameters
    ----------
    dataset : Dataset
        The baseline, from :func:`detection.prepare`.
    detector : {"isolation_forest", "zscore", "robust_zscore"}
    window : int, optional
        Sensor profile: readings in the recent window (default 30).
    normal : bool, default True
        The baseline is normal history: the flag cut-off sits above its own tail (see
        ``IsolationForestDetector.threshold``), so later normal files flag few rows.
        False: it is (part of) the file to be scored, expected to hold anomalies, as in
        :func:`fit_score`.
    **params
        Detector parameters, e.g. ``contamination=0.01`` or ``mean=20, std=2, multiplier=3``.
    """
    model, _, scores, _ = _fit(dataset, detector, params, window, normal=normal)
    if dataset.profile == "sensor":  # where a live stream's learning starts
        model.learning = Learner(model.featurizer.metrics_, judged=True,
                                 spreads=model.featurizer.spreads).state_after(
            dataset.with_constant_metrics(), scores)
    return model


def check_learnable(profile: str) -> None:
    """Learning as it goes (:mod:`detection.learning`) scores sensor files only."""
    if profile != "sensor":
        raise ParameterError(f"learning as it goes scores sensor files; this file's profile "
                             f"is {profile}")


def fit_score(dataset: Dataset, *, detector: str = DEFAULT_DETECTOR, window: int | None = None,
              learn: bool = False, **params) -> tuple[Model, ScoredFrame]:
    """Fit on ``dataset`` and score it, computing every row's score once. The file is
    expected to hold anomalies: the ``contamination`` share of its rows is flagged.

    ``learn`` (sensor files): the file is then scored as a live stream of it from its
    first reading, by the detector that keeps learning (:mod:`detection.learning`), with
    the model's scores as one of its columns: a change is told where it starts and then
    learned, rather than every row of it flagged as unlike the file as a whole."""
    if learn:
        check_learnable(dataset.profile)
    model, features, scores, _ = _fit(dataset, detector, params, window, normal=False)
    result = model._result(dataset, features, model._bounded(scores, features))
    if learn:  # from the first reading: no baseline before the file
        result = model.score_live(dataset, {}, result)[0]
    result.model_version = None  # the model exists only for this file
    return model, result
