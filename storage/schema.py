"""The tables, as SQLAlchemy 2 typed models.

Every table and column carries a comment: staff read these tables in Adminer, and the
comments are what they see there. Changing anything here needs an Alembic migration
(`tests/storage/test_migrations.py` runs ``alembic check``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

REVIEW_STATUSES = ("new", "acknowledged", "confirmed", "false_positive", "dismissed")
# Statuses an analyst sets when a row needs no more attention.
CLOSED_STATUSES = ("false_positive", "dismissed")
NOTIFICATION_STATUSES = ("queued", "sent", "failed")
ROLES = ("viewer", "analyst", "admin")  # each may do what the ones before it may
# What a login's novelty is judged on (detection.features.login.NOVELTY).
KNOWN_KEYS = ("country", "city", "ip", "network", "asn", "device")
KNOWN_VALUE_CHARS = 1000  # a longer value (a pathological user agent) is not remembered

Json = JSON().with_variant(JSONB(), "postgresql")
Timestamp = DateTime(timezone=True)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _checked_review_and_severity() -> tuple[CheckConstraint, CheckConstraint]:
    """The allowed values of the columns every reviewable table has."""
    return (CheckConstraint(_in("review_status", REVIEW_STATUSES), name="review_status"),
            CheckConstraint(_in("severity", ("low", "medium", "high", "critical")),
                            name="severity"))


class Reviewed:
    """The review columns of anomalies and incidents (reviewing an incident sets its rows)."""

    review_status: Mapped[str] = mapped_column(
        String(16), default="new", server_default="new", index=True,
        comment="new, acknowledged, confirmed, false_positive or dismissed.")
    reviewed_by: Mapped[str | None] = mapped_column(String(255), comment="Who reviewed it.")
    reviewed_at: Mapped[datetime | None] = mapped_column(Timestamp, comment="When (UTC).")
    note: Mapped[str | None] = mapped_column(Text, comment="Reviewer's note.")


class DetectionRun(Base):
    __tablename__ = "detection_runs"
    __table_args__ = {"comment": "One scored CSV file: what was read, how it was scored, totals."}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, comment="Run id.")
    created_at: Mapped[datetime] = mapped_column(
        Timestamp, server_default=func.current_timestamp(), index=True, comment="When the run was stored (UTC).")
    run_key: Mapped[str] = mapped_column(
        String(64), unique=True,
        comment="sha256 of the file hash, profile, detector, model and parameters: a run "
                "is stored once.")
    source_name: Mapped[str] = mapped_column(String(255), comment="Uploaded file name.")
    file_sha256: Mapped[str] = mapped_column(String(64), index=True,
                                             comment="sha256 of the file's bytes.")
    profile: Mapped[str] = mapped_column(String(16), index=True,
                                         comment="sensor, login or generic.")
    detector: Mapped[str] = mapped_column(String(32),
                                          comment="isolation_forest, zscore or robust_zscore.")
    model_version: Mapped[str | None] = mapped_column(
        String(40), comment="Registered model that scored the file; empty when fitted on it.")
    parameters: Mapped[dict] = mapped_column(Json, comment="Detector parameters (JSON).")
    threshold: Mapped[float] = mapped_column(
        Float, comment="Flag cut-off on the 0-100 anomaly score.")
    threshold_note: Mapped[str] = mapped_column(Text, comment="The cut-off in words.")
    total_rows: Mapped[int] = mapped_column(Integer, comment="Rows scored.")
    anomaly_count: Mapped[int] = mapped_column(Integer, comment="Rows flagged (stored in "
                                                                "anomalies).")
    severity_counts: Mapped[dict] = mapped_column(
        Json, comment="Flagged rows per severity (JSON).")
    entity_column: Mapped[str | None] = mapped_column(
        String(255), comment="The file's column naming the user, sensor or elevator.")
    time_column: Mapped[str | None] = mapped_column(String(255),
                                                    comment="The file's timestamp column.")
    columns: Mapped[list | None] = mapped_column(
        Json, comment="The file's column names in file order (JSONB keeps an anomaly's "
                      "data keys in its own order; downloads follow this one).")
    status: Mapped[str] = mapped_column(String(16), default="complete",
                                        comment="complete: every flagged row is stored.")
    warnings: Mapped[list] = mapped_column(Json, comment="Validation warnings (JSON list).")
    chart_data: Mapped[bytes | None] = mapped_column(
        LargeBinary,
        comment="Binned normal rows of the whole file (Parquet) for the dashboard's charts.")
    score_histogram: Mapped[list | None] = mapped_column(
        Json, comment="Rows per 1-point score bin, [[bin start, rows], ...] (JSON).")
    drift_share: Mapped[float | None] = mapped_column(
        Float, comment="Scored by a registered model: share of rows outside its baseline's "
                       "range on the feature where it is largest (about 0.01 from the same "
                       "source; above 0.10 the model is stale). Empty when fitted on the file.")
    drift_feature: Mapped[str | None] = mapped_column(
        String(255), comment="The feature drift_share was measured on.")
    mapping: Mapped[dict | None] = mapped_column(
        Json, comment="Which column played which role, e.g. {\"user\": \"username\"} "
                      "(JSON; empty for runs stored before it was kept).")


class Anomaly(Reviewed, Base):
    __tablename__ = "anomalies"
    __table_args__ = (
        *_checked_review_and_severity(),
        # With the run's month: on PostgreSQL the table is partitioned by it, and a
        # partitioned table's unique keys hold its partition key (one month a run).
        Index("ix_anomalies_run_id_row_number", "run_id", "row_number", "run_created_at",
              unique=True),
        {"comment": "Flagged rows of each run, with their score, reasons and review."},
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, comment="Anomaly id.")
    run_id: Mapped[int] = mapped_column(
        ForeignKey("detection_runs.id", ondelete="CASCADE"), comment="detection_runs.id")
    row_number: Mapped[int] = mapped_column(
        Integer, comment="Data row in the file (1 = first line after the header).")
    event_time: Mapped[datetime | None] = mapped_column(
        Timestamp, index=True, comment="The row's timestamp (UTC).")
    entity: Mapped[str | None] = mapped_column(
        String(255), index=True, comment="User, elevator or sensor the row is about.")
    anomaly_score: Mapped[float] = mapped_column(
        Float, index=True, comment="0-100, higher is more anomalous.")
    severity: Mapped[str] = mapped_column(String(8), index=True,
                                          comment="low, medium, high or critical.")
    reasons: Mapped[str] = mapped_column(Text, comment="Why the row was flagged, in words.")
    data: Mapped[dict] = mapped_column(Json, comment="The original row (JSON).")
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), index=True,
        comment="incidents.id: the incident the row belongs to.")
    run_created_at: Mapped[datetime] = mapped_column(
        Timestamp, comment="When the run was stored (UTC), copied from "
                           "detection_runs.created_at: on PostgreSQL the month partition the "
                           "row lives in.")


class Incident(Reviewed, Base):
    __tablename__ = "incidents"
    __table_args__ = (
        *_checked_review_and_severity(),
        Index("ix_incidents_run_id_number", "run_id", "number", unique=True),
        {"comment": "Flagged rows of one entity that follow each other within a gap "
                    "(30 min sensors, 2 h logins): one event to review."},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, comment="Incident id.")
    run_id: Mapped[int] = mapped_column(
        ForeignKey("detection_runs.id", ondelete="CASCADE"), comment="detection_runs.id")
    number: Mapped[int] = mapped_column(Integer, comment="Incident number within the run, "
                                                         "from 0 in (entity, time) order.")
    entity: Mapped[str | None] = mapped_column(
        String(255), index=True, comment="User, elevator or sensor; empty for the whole file.")
    started_at: Mapped[datetime | None] = mapped_column(
        Timestamp, index=True, comment="Time of its first flagged row (UTC).")
    ended_at: Mapped[datetime | None] = mapped_column(
        Timestamp, comment="Time of its last flagged row (UTC).")
    row_count: Mapped[int] = mapped_column(Integer, comment="Flagged rows in it.")
    peak_score: Mapped[float] = mapped_column(Float, index=True,
                                              comment="Highest anomaly score of its rows.")
    severity: Mapped[str] = mapped_column(String(8), index=True,
                                          comment="Highest severity of its rows.")
    summary: Mapped[str] = mapped_column(Text, comment="The peak row's leading reason and "
                                                       "the incident's extent, in words.")


class StreamCheckpoint(Base):
    __tablename__ = "stream_checkpoints"
    __table_args__ = {"comment": "Where each live stream (vigil stream --save) has got to: "
                                 "written with its rows, so a restart neither loses nor "
                                 "repeats any."}

    source: Mapped[str] = mapped_column(String(255), primary_key=True,
                                        comment="The stream's name (--source).")
    run_id: Mapped[int] = mapped_column(
        ForeignKey("detection_runs.id", ondelete="CASCADE"), comment="detection_runs.id of "
                                                                     "the live run.")
    position: Mapped[int] = mapped_column(BigInteger, comment="Data rows scored and stored.")
    carried: Mapped[bytes] = mapped_column(
        LargeBinary, comment="The rows the next batch needs (each entity's recent readings), "
                             "pickled.")
    updated_at: Mapped[datetime] = mapped_column(Timestamp, comment="Last batch (UTC).")


class StreamLease(Base):
    __tablename__ = "stream_leases"
    __table_args__ = {"comment": "Which process writes each live stream: one writer a "
                                 "stream, so no batch is lost between two."}

    source: Mapped[str] = mapped_column(String(255), primary_key=True,
                                        comment="The stream's name (--source).")
    holder: Mapped[str] = mapped_column(String(255), comment="Who writes it: a process "
                                                             "(host, pid) or an API batch.")
    host: Mapped[str] = mapped_column(String(255), comment="The writer's host name.")
    pid: Mapped[int] = mapped_column(Integer, comment="The writer's process id on that host.")
    acquired_at: Mapped[datetime] = mapped_column(Timestamp, comment="When it took the "
                                                                     "stream (UTC).")
    expires_at: Mapped[datetime] = mapped_column(
        Timestamp, comment="Renewed while the writer runs; after it (UTC), another may take "
                           "the stream.")


class AlertNotification(Base):
    __tablename__ = "alert_notifications"
    __table_args__ = (
        CheckConstraint(_in("status", NOTIFICATION_STATUSES), name="status"),
        {"comment": "Alert digests: one per run and recipient group, sent at most once."},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, comment="Notification id.")
    run_id: Mapped[int] = mapped_column(
        ForeignKey("detection_runs.id", ondelete="CASCADE"), index=True,
        comment="detection_runs.id")
    dedupe_key: Mapped[str] = mapped_column(
        String(64), unique=True, comment="sha256 of run and recipients: never sent twice.")
    recipients: Mapped[str] = mapped_column(Text, comment="Comma-separated addresses.")
    subject: Mapped[str] = mapped_column(Text, comment="Email subject.")
    anomaly_ids: Mapped[list] = mapped_column(
        Json, comment="anomalies.id covered by this digest (JSON list).")
    status: Mapped[str] = mapped_column(String(8), index=True, comment="queued, sent or failed.")
    attempts: Mapped[int] = mapped_column(Integer, default=0, comment="Delivery attempts.")
    last_error: Mapped[str | None] = mapped_column(Text, comment="Last delivery error.")
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.current_timestamp(),
                                                 comment="When the digest was queued (UTC).")
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp, index=True,
                                                     comment="When it was delivered (UTC).")
    transport: Mapped[str | None] = mapped_column(
        String(255), comment="smtp://host:port, or the outbox file it was written to.")


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = {"comment": "Registered models: fitted on a baseline, reused to score."}

    version: Mapped[str] = mapped_column(String(40), primary_key=True, comment="Version id.")
    name: Mapped[str | None] = mapped_column(
        String(64), index=True,
        comment="What the model is for, e.g. pumps (vigil train --name); --model NAME takes "
                "its newest version.")
    created_at: Mapped[datetime] = mapped_column(Timestamp, comment="When it was fitted (UTC).")
    profile: Mapped[str] = mapped_column(String(16), index=True,
                                         comment="sensor, login or generic.")
    detector: Mapped[str] = mapped_column(String(32), comment="Detector name.")
    parameters: Mapped[dict] = mapped_column(Json, comment="Detector parameters (JSON).")
    features: Mapped[list] = mapped_column(Json, comment="Feature names (JSON list).")
    training_rows: Mapped[int] = mapped_column(Integer, comment="Rows in the baseline.")
    training_hash: Mapped[str] = mapped_column(String(64),
                                               comment="sha256 of the baseline's content.")
    libraries: Mapped[dict] = mapped_column(Json, comment="Library versions (JSON).")
    threshold: Mapped[dict] = mapped_column(Json, comment="Flag cut-off, score and raw (JSON).")
    source_name: Mapped[str | None] = mapped_column(String(255),
                                                    comment="Baseline file name.")
    model: Mapped[bytes] = mapped_column(LargeBinary, comment="The serialised model (joblib).")
    is_active: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default="0", index=True,
        comment="The model used for this profile when none is chosen.")
    activated_at: Mapped[datetime | None] = mapped_column(
        Timestamp, comment="When it was last made active (UTC).")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        {"comment": "Bearer tokens of the HTTP API (vigil tokens add): only a hash is kept."},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, comment="Token id.")
    name: Mapped[str] = mapped_column(String(255), unique=True,
                                      comment="Who or what uses it (a system, a job).")
    role: Mapped[str] = mapped_column(String(16), comment="viewer, analyst or admin.")
    token_hash: Mapped[str] = mapped_column(
        String(64), unique=True, comment="sha256 of the token (the token is shown once).")
    prefix: Mapped[str] = mapped_column(String(16), comment="The token's first characters, "
                                                            "to tell tokens apart.")
    created_at: Mapped[datetime] = mapped_column(Timestamp, comment="When it was made (UTC).")
    revoked_at: Mapped[datetime | None] = mapped_column(
        Timestamp, comment="When it was revoked (UTC); a revoked token is refused.")
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"),
        comment="users.id of its owner: the token carries at most their role, and stops "
                "working when they are disabled.")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        {"comment": "Dashboard accounts (vigil users): argon2id password hashes, roles, "
                    "lockout after failed sign-ins."},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, comment="User id.")
    name: Mapped[str] = mapped_column(String(255), unique=True, comment="Sign-in name.")
    role: Mapped[str] = mapped_column(String(16), comment="viewer, analyst or admin.")
    password_hash: Mapped[str | None] = mapped_column(
        String(255), comment="argon2id hash; empty for single sign-on only accounts.")
    email: Mapped[str | None] = mapped_column(String(255), unique=True,
                                              comment="E-mail, matched on single sign-on.")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0",
                                           comment="A disabled account cannot sign in.")
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0",
                                                 comment="Failed sign-ins in a row.")
    locked_until: Mapped[datetime | None] = mapped_column(
        Timestamp, comment="Sign-in refused until then (UTC), after 5 failures in a row.")
    created_at: Mapped[datetime] = mapped_column(Timestamp, comment="When it was made (UTC).")
    signed_in_at: Mapped[datetime | None] = mapped_column(Timestamp,
                                                          comment="Last sign-in (UTC).")


class UserSession(Base):
    __tablename__ = "user_sessions"
    __table_args__ = {"comment": "Dashboard sign-ins: a browser holds only a random id "
                                 "(HttpOnly cookie); disabling the user, changing their "
                                 "password or signing out ends the session at once."}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, comment="Session id.")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True,
                                            comment="sha256 of the browser's session id.")
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True, comment="users.id")
    created_at: Mapped[datetime] = mapped_column(Timestamp, comment="Signed in at (UTC).")
    seen_at: Mapped[datetime] = mapped_column(Timestamp, comment="Last page shown (UTC).")
    ended_at: Mapped[datetime | None] = mapped_column(
        Timestamp, comment="Signed out, disabled, password changed or idle (UTC).")
    ended_why: Mapped[str | None] = mapped_column(String(32), comment="Why it ended.")


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = {"comment": "Who did what: reviews, alerts sent, models trained, "
                                 "activated and rolled back, users and tokens."}

    id: Mapped[int] = mapped_column(Integer, primary_key=True, comment="Event id.")
    at: Mapped[datetime] = mapped_column(Timestamp, index=True, comment="When (UTC).")
    actor: Mapped[str] = mapped_column(String(255), index=True,
                                       comment="Who: a user, a token (token:NAME) or the "
                                               "command line (cli:OS-USER).")
    action: Mapped[str] = mapped_column(String(64), index=True,
                                        comment="What, e.g. anomaly.review, model.activate.")
    target: Mapped[str] = mapped_column(String(255), comment="What it was done to, e.g. "
                                                             "anomaly 17, model VERSION.")
    before: Mapped[dict | None] = mapped_column(Json, comment="The state before (JSON).")
    after: Mapped[dict | None] = mapped_column(Json, comment="The state after (JSON).")


class AlertRoute(Base):
    __tablename__ = "alert_routes"
    __table_args__ = (
        CheckConstraint(_in("key", ("to_security", "to_maintenance", "min_severity")),
                        name="key"),
        {"comment": "Who receives alerts, set on the Alerts page: a row overrides its "
                    "environment setting (ALERT_TO_SECURITY, ALERT_TO_MAINTENANCE, "
                    "ALERT_MIN_SEVERITY)."})

    key: Mapped[str] = mapped_column(String(32), primary_key=True,
                                     comment="to_security, to_maintenance or min_severity.")
    value: Mapped[str] = mapped_column(String(2000), comment="Addresses (comma-separated) "
                                                             "or a severity.")
    updated_by: Mapped[str] = mapped_column(String(255), comment="Who set it.")
    updated_at: Mapped[datetime] = mapped_column(Timestamp, comment="When (UTC).")


class KnownValue(Base):
    __tablename__ = "known_values"
    __table_args__ = (
        CheckConstraint(_in("key", KNOWN_KEYS), name="key"),
        Index("ix_known_values_user_name_key_value", "user_name", "key", "value", unique=True),
        {"comment": "Values analysts marked as normal for a login user (the country, IP, "
                    "device... of a row reviewed as a false positive): later login runs "
                    "count them as the user's known history."},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, comment="Known value id.")
    user_name: Mapped[str] = mapped_column(String(255), comment="The login user.")
    key: Mapped[str] = mapped_column(
        String(16), comment="country, city, ip, network, asn or device.")
    value: Mapped[str] = mapped_column(String(KNOWN_VALUE_CHARS),
                                       comment="The value, as the file had it.")
    added_by: Mapped[str] = mapped_column(String(255), comment="Who reviewed the row.")
    added_at: Mapped[datetime] = mapped_column(
        Timestamp, server_default=func.current_timestamp(), comment="When (UTC).")
    # No foreign key: one cannot point into a partitioned table by id alone; pruning
    # clears it (storage.retention), as ON DELETE SET NULL did.
    anomaly_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), index=True,
        comment="anomalies.id: the row reviewed as a false positive.")


class RunInput(Base):
    __tablename__ = "run_inputs"
    __table_args__ = (
        {"comment": "The rows of a stored sensor or generic file, as read (Parquet): what "
                    "`vigil train --from-runs` and Models train a model on, leaving out the "
                    "rows reviewed as confirmed."},
    )

    run_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("detection_runs.id", ondelete="CASCADE"), primary_key=True,
        comment="detection_runs.id.")
    row_count: Mapped[int] = mapped_column(Integer, comment="Data rows kept.")
    content: Mapped[bytes] = mapped_column(
        LargeBinary, comment="The file's rows (Parquet, zstd; the index is the row number).")


class RunPartition(Base):
    __tablename__ = "run_partitions"
    __table_args__ = (
        {"comment": "The partitions of a run scored on a cluster (`--engine dask --save`) "
                    "whose anomalies are stored: a partition is stored once, however often "
                    "a retried worker scores it."},
    )

    run_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("detection_runs.id", ondelete="CASCADE"), primary_key=True,
        comment="detection_runs.id.")
    partition: Mapped[int] = mapped_column(Integer, primary_key=True,
                                           comment="Partition number, from 0.")
    row_count: Mapped[int] = mapped_column(Integer, comment="Rows the partition scored.")
    anomaly_count: Mapped[int] = mapped_column(Integer, comment="Rows it flagged.")
    saved_at: Mapped[datetime] = mapped_column(
        Timestamp, server_default=func.current_timestamp(), comment="When (UTC).")
