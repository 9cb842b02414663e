"""Save scored runs exactly once, in bulk, in one transaction; list and read them."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import psycopg2
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session, defer

from detection import SCORE_COLUMNS, ScoredFrame, incidents
from storage import audit, months, run_inputs
from storage.db import insert_of, transaction
from storage.errors import RefusedValueError
from storage.schema import Anomaly, DetectionRun, Incident, RunInput
from storage.text import NAME_CHARS, clean, clean_column, clean_json, json_safe

# Columns of RunToSave.anomalies, one per column of the anomalies table it fills.
ANOMALY_FIELDS = ("row_number", "event_time", "entity", "anomaly_score", "severity", "reasons",
                  "data")
INSERT_BATCH = 20_000


@dataclass
class RunToSave:
    """Everything stored for one run; built from a scored file or read back from the journal.

    ``anomalies`` holds the flagged rows with the columns in :data:`ANOMALY_FIELDS`
    (``data`` is the original row as a dict).
    """

    source_name: str
    file_sha256: str
    profile: str
    detector: str
    model_version: str | None
    parameters: dict
    threshold: float
    threshold_note: str
    total_rows: int
    anomalies: pd.DataFrame
    entity_column: str | None = None
    time_column: str | None = None
    warnings: list[str] = field(default_factory=list)
    chart_data: bytes | None = None
    score_histogram: list | None = None
    incident_gap_minutes: float | None = None  # None: the profile's default
    columns: list[str] | None = None  # the file's columns in file order
    drift_share: float | None = None  # scored by a registered model: see detection.envelope
    drift_feature: str | None = None
    mapping: dict | None = None  # role -> column (detection.columns.ColumnMapping)
    inputs: bytes | None = None  # the file's rows (storage.run_inputs), to train from

    @property
    def incident_gap(self) -> pd.Timedelta:
        if self.incident_gap_minutes is None:
            return incidents.DEFAULT_GAP[self.profile]
        return pd.Timedelta(minutes=self.incident_gap_minutes)

    @property
    def run_key(self) -> str:
        """Same file, same profile, detector, model and parameters: same key."""
        identity = [self.file_sha256, self.profile, self.detector, self.model_version,
                    self.parameters]
        return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()
                              ).hexdigest()

    def incident_sources(self) -> list[np.ndarray] | None:
        """What joins sign-ins of several users into a campaign (None: not logins)."""
        if self.profile != "login":
            return None
        return incidents.login_sources(self.anomalies, self.mapping)

    def incident_numbers(self) -> np.ndarray:
        """Each flagged row's incident (0, 1, ...): rows of one entity closer than the gap;
        sign-ins of several users from one source, a campaign."""
        return incidents.group(self.anomalies, self.incident_gap, self.incident_sources())

    def incidents(self, numbers: np.ndarray | None = None) -> pd.DataFrame:
        """The run's incidents, as they are stored (detection.incidents.summarize)."""
        numbers = self.incident_numbers() if numbers is None else numbers
        return incidents.summarize(self.anomalies, numbers, self.incident_sources())

    @property
    def severity_counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in self.anomalies["severity"].value_counts().items()}

    @classmethod
    def from_result(cls, result: ScoredFrame, *, source_name: str, file_sha256: str,
                    chart_data: bytes | None = None, score_histogram: list | None = None,
                    incident_gap_minutes: float | None = None,
                    keep_inputs: bool = False) -> RunToSave:
        """``keep_inputs``: keep a sensor or generic file's rows, to train from later."""
        flagged = result.anomalies
        inputs = flagged.drop(columns=list(SCORE_COLUMNS))
        inputs = inputs.astype(object).where(inputs.notna(), None)
        keys = [clean(str(k)) for k in inputs.columns]
        entity = result.entity_column
        times = result.time.loc[flagged.index] if result.time is not None else None
        anomalies = pd.DataFrame({
            "row_number": flagged.index.to_numpy(dtype="int64"),
            "event_time": (times.dt.tz_localize(UTC).to_numpy(dtype=object)
                           if times is not None else None),
            "entity": _objects(clean_column(flagged[entity], NAME_CHARS)) if entity else None,
            "anomaly_score": flagged["anomaly_score"].to_numpy(dtype="float64"),
            "severity": flagged["severity"].to_numpy(dtype=object),
            "reasons": _objects(clean_column(flagged["reasons"])),
            "data": [dict(zip(keys, map(json_safe, row), strict=True))
                     for row in inputs.itertuples(index=False, name=None)],
        })
        return cls(
            source_name=clean(source_name, NAME_CHARS), file_sha256=file_sha256,
            profile=result.profile, detector=result.detector,
            model_version=result.model_version,
            parameters={clean(str(k)): json_safe(v) for k, v in result.parameters.items()},
            threshold=result.threshold, threshold_note=clean(result.threshold_note),
            total_rows=len(result.frame), anomalies=anomalies,
            entity_column=clean(entity, NAME_CHARS),
            time_column=clean(result.mapping.timestamp, NAME_CHARS),
            warnings=clean_json(list(result.warnings)),
            chart_data=chart_data, score_histogram=score_histogram,
            incident_gap_minutes=incident_gap_minutes,
            columns=keys,
            mapping={role: clean(column) for role, column in result.mapping.as_dict().items()
                     if column is not None},
            **drift_fields(result.drift),
            inputs=(run_inputs.to_bytes(result.frame.drop(columns=list(SCORE_COLUMNS)))
                    if keep_inputs and result.profile in run_inputs.PROFILES else None),
        )


def drift_fields(drift) -> dict:
    """What a run stores of its drift from the model's baseline (detection.envelope.Drift):
    nothing when not judged, as a few rows (an API body) say nothing of the source."""
    if drift is None or not drift.judged:
        return {"drift_share": None, "drift_feature": None}
    return {"drift_share": drift.share, "drift_feature": clean(drift.feature, NAME_CHARS)}


def _objects(text: pd.Series) -> np.ndarray:
    """A text column as Python strings, missing values as None."""
    return text.astype(object).where(text.notna(), None).to_numpy(dtype=object)


@dataclass(frozen=True)
class SaveOutcome:
    run_id: int
    created: bool  # False: the run was stored before and nothing was inserted


def _insert_ignoring_duplicate(engine: Engine):
    insert_row = insert_of(engine)
    return insert_row(DetectionRun).on_conflict_do_nothing(index_elements=["run_key"])


def _anomaly_rows(run_id: int, anomalies: pd.DataFrame) -> list[dict]:
    """One dict per row for an executemany INSERT."""
    columns = {name: anomalies[name].to_numpy(dtype=object)
               for name in (*ANOMALY_FIELDS, "incident_id", "run_created_at")}
    columns["incident_id"] = anomalies["incident_id"].astype("int64").tolist()
    columns["row_number"] = anomalies["row_number"].astype("int64").tolist()
    columns["anomaly_score"] = anomalies["anomaly_score"].astype("float64").tolist()
    rows = []
    for i in range(len(anomalies)):
        row = {name: values[i] for name, values in columns.items()}
        row["run_id"] = run_id
        if row["event_time"] is not None and pd.isna(row["event_time"]):
            row["event_time"] = None
        rows.append(row)
    return rows


def save_run(engine: Engine, *, run: RunToSave, actor: str | None = None) -> SaveOutcome:
    """Store a run and its flagged rows in one transaction, unless it is stored already.
    With an ``actor``, the audit log records who stored it (``run.save``), in the same
    transaction: a run is never stored without its event, nor an event without its run.

    The unique ``run_key`` decides between concurrent saves of the same run: the second
    insert does nothing (on PostgreSQL it waits for the first to commit), and the
    existing run is returned.
    """
    with refused_values(f"run {run.source_name!r}"):
        return _save(engine, run, run_values(run, months.prepare(engine)), actor)


def run_values(run: RunToSave, created_at: datetime, *, status: str = "complete") -> dict:
    """The detection_runs row of ``run``, stored at ``created_at`` (months.prepare)."""
    return {
        "created_at": created_at,
        "run_key": run.run_key, "source_name": run.source_name,
        "file_sha256": run.file_sha256, "profile": run.profile, "detector": run.detector,
        "model_version": run.model_version, "parameters": run.parameters,
        "threshold": run.threshold, "threshold_note": run.threshold_note,
        "total_rows": run.total_rows, "anomaly_count": len(run.anomalies),
        "severity_counts": run.severity_counts, "entity_column": run.entity_column,
        "time_column": run.time_column, "status": status, "warnings": run.warnings,
        "chart_data": run.chart_data, "score_histogram": run.score_histogram,
        "columns": run.columns, "drift_share": run.drift_share,
        "drift_feature": run.drift_feature, "mapping": run.mapping,
    }


@contextmanager
def refused_values(what: str) -> Iterator[None]:
    """A value the database refuses (too long, invalid text) as a RefusedValueError: the
    data's fault, never reported as a failing connection."""
    try:
        yield
    except (DataError, IntegrityError, ValueError) as exc:
        # psycopg2 refuses a NUL character with a plain ValueError before sending.
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise RefusedValueError(f"the database refused a value of {what}: {detail}") from None


def _save(engine: Engine, run: RunToSave, values: dict, actor: str | None) -> SaveOutcome:
    with transaction(engine) as session:
        run_id = session.execute(
            _insert_ignoring_duplicate(engine).values(**values).returning(DetectionRun.id)
        ).scalar()
        if run_id is None:
            existing = session.execute(
                select(DetectionRun.id).where(DetectionRun.run_key == run.run_key)).scalar_one()
            return SaveOutcome(existing, created=False)
        insert_anomalies(session, run_id, run.anomalies.assign(
            incident_id=_insert_incidents(session, run_id, run)))
        if run.inputs is not None:
            session.add(RunInput(run_id=run_id, row_count=run.total_rows, content=run.inputs))
        if actor is not None:
            audit.record(session, actor=actor, action="run.save", target=f"run {run_id}",
                         after={"source": run.source_name, "profile": run.profile,
                                "rows": run.total_rows, "flagged": len(run.anomalies),
                                "model": run.model_version or "fitted on the file"})
    return SaveOutcome(run_id, created=True)


def insert_anomalies(session: Session, run_id: int, rows: pd.DataFrame) -> None:
    """Insert flagged rows (with ``incident_id``) in batches: COPY on PostgreSQL, into
    the partition of the month the run was stored (made with the run: months.prepare;
    here only for a run stored before that, whose month has no partition yet)."""
    if rows.empty:
        return
    created = session.scalar(select(DetectionRun.created_at).where(DetectionRun.id == run_id))
    months.ensure(session, created)
    rows = rows.assign(run_created_at=created)
    postgres = session.get_bind().dialect.name == "postgresql"
    insert_rows = _copy_rows if postgres else _insert_rows
    for start in range(0, len(rows), INSERT_BATCH):
        insert_rows(session, run_id, rows.iloc[start:start + INSERT_BATCH])


def _insert_incidents(session: Session, run_id: int, run: RunToSave,
                      stored_numbers=None) -> np.ndarray:
    """Group the run's flagged rows into incidents, store them, and return each row's
    incident id; ``stored_numbers(numbers)``: the numbers stored for the incidents' own
    (a partition's, numbered apart until its run is complete). On PostgreSQL the ids are drawn from the table's sequence in one query
    and the incidents COPied in (an INSERT ... RETURNING of 20,000 incidents, one per
    login anomaly, took 1.8 s of a 2.3 s save)."""
    numbers = run.incident_numbers()
    found = run.incidents(numbers)
    if found.empty:
        return np.zeros(0, dtype="int64")
    found["entity"] = [clean(e, NAME_CHARS) if isinstance(e, str) else None
                       for e in found["entity"]]
    if stored_numbers is not None:
        found["number"] = stored_numbers(found["number"].to_numpy(dtype="int64"))
    if session.get_bind().dialect.name == "postgresql":
        ids = np.asarray(session.scalars(text(
            "SELECT nextval(pg_get_serial_sequence('incidents', 'id')) "
            "FROM generate_series(1, :n)"), {"n": len(found)}).all(), dtype="int64")
        _copy(session, "incidents", pa.table({
            "id": ids, "run_id": np.full(len(found), run_id, dtype="int64"),
            "number": found["number"].to_numpy(dtype="int64"),
            "entity": pa.array(found["entity"].tolist(), type=pa.string()),
            "started_at": pa.array(pd.to_datetime(found["started_at"], utc=True)),
            "ended_at": pa.array(pd.to_datetime(found["ended_at"], utc=True)),
            "row_count": found["row_count"].to_numpy(dtype="int64"),
            "peak_score": found["peak_score"].to_numpy(dtype="float64"),
            "severity": pa.array(found["severity"].tolist(), type=pa.string()),
            "summary": pa.array(found["summary"].tolist(), type=pa.string()),
        }))
        return ids[numbers]
    for column in ("started_at", "ended_at"):  # NaT (a file without times) as NULL
        found[column] = found[column].astype(object).where(found[column].notna(), None)
    values = [{"run_id": run_id, **row} for row in found.to_dict("records")]
    ids = session.scalars(insert(Incident).returning(Incident.id,
                                                     sort_by_parameter_order=True),
                          values).all()
    return np.asarray(ids, dtype="int64")[numbers]


def _insert_rows(session: Session, run_id: int, anomalies: pd.DataFrame) -> None:
    session.execute(insert(Anomaly), _anomaly_rows(run_id, anomalies))


# An anomaly row, as COPied.
COPY_COLUMNS = ("run_id", *ANOMALY_FIELDS, "incident_id", "run_created_at")


def _copy_rows(session: Session, run_id: int, anomalies: pd.DataFrame) -> None:
    """PostgreSQL: COPY the rows in, inside the session's transaction (an INSERT of many
    rows costs several times more: bench/storing.py)."""
    n = len(anomalies)
    _copy(session, "anomalies", pa.table({
        "run_id": np.full(n, run_id, dtype="int64"),
        "row_number": anomalies["row_number"].to_numpy(dtype="int64"),
        "event_time": pa.array(pd.to_datetime(anomalies["event_time"], utc=True)),
        "entity": pa.array(anomalies["entity"].tolist(), type=pa.string()),
        "anomaly_score": anomalies["anomaly_score"].to_numpy(dtype="float64"),
        "severity": pa.array(anomalies["severity"].tolist(), type=pa.string()),
        "reasons": pa.array(anomalies["reasons"].tolist(), type=pa.string()),
        "data": pa.array([json.dumps(d) for d in anomalies["data"]], type=pa.string()),
        "incident_id": anomalies["incident_id"].to_numpy(dtype="int64"),
        "run_created_at": pa.array(pd.to_datetime(anomalies["run_created_at"], utc=True)),
    }).select(list(COPY_COLUMNS)))


def _copy(session: Session, table_name: str, table: pa.Table) -> None:
    """COPY ``table`` (its column names are the table's) into ``table_name``, inside the
    session's transaction; a refusal raises as any other statement's would."""
    buffer = io.BytesIO()
    pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False,
                                                        quoting_style="needed"))
    buffer.seek(0)
    statement = (f"COPY {table_name} ({', '.join(table.column_names)}) FROM STDIN "
                 "WITH (FORMAT csv)")
    cursor = session.connection().connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert(statement, buffer)
    except psycopg2.Error as exc:
        # The same exception types as every other statement (IntegrityError, ...).
        raise DBAPIError.instance(statement, None, exc, psycopg2.Error) from exc
    finally:
        cursor.close()


def list_runs(engine: Engine, *, limit: int = 100, offset: int = 0,
              profile: str | None = None, before_id: int | None = None) -> list[DetectionRun]:
    """Stored runs, newest first (``chart_data`` is not loaded); ``before_id`` is a
    page's cursor (ids below the previous page's last)."""
    query = (select(DetectionRun).options(defer(DetectionRun.chart_data))
             .order_by(DetectionRun.id.desc()).limit(limit).offset(offset))
    if profile:
        query = query.where(DetectionRun.profile == profile)
    if before_id is not None:
        query = query.where(DetectionRun.id < before_id)
    with transaction(engine) as session:
        return list(session.scalars(query))


def get_run(engine: Engine, *, run_id: int) -> DetectionRun | None:
    with transaction(engine) as session:
        return session.get(DetectionRun, run_id)

