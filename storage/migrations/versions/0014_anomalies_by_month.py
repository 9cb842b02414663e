"""anomalies range-partitioned by the month their run was stored (PostgreSQL)

Every anomaly carries its run's ``created_at`` (``run_created_at``). On PostgreSQL the
table is partitioned by it, a partition a month in the schema ``anomaly_months`` (Adminer
and every query still see one ``anomalies`` table in ``public``), so pruning a month of
old runs drops its partition instead of deleting rows. The unique (run, row) index and
the primary key gain the month (a partitioned table's unique keys hold its partition
key: with one month a run, the same rule). ``known_values.anomaly_id`` keeps the id it
points at but no foreign key (one cannot point into a partitioned table by id alone):
pruning clears it, as ``ON DELETE SET NULL`` did. On SQLite: the column, the index and
the foreign key change alike; nothing is partitioned.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 19:50:00
"""

import sqlalchemy as sa
from alembic import op

from storage.migrations.views import create_recent_anomalies, drop_recent_anomalies

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

COLUMN_COMMENT = ("When the run was stored (UTC), copied from detection_runs.created_at: "
                  "on PostgreSQL the month partition the row lives in.")
COLUMNS = """
    id bigint NOT NULL DEFAULT nextval('anomalies_id_seq'::regclass),
    run_id integer NOT NULL,
    row_number integer NOT NULL,
    event_time timestamp with time zone,
    entity character varying(255),
    anomaly_score double precision NOT NULL,
    severity character varying(8) NOT NULL,
    reasons text NOT NULL,
    data jsonb NOT NULL,
    review_status character varying(16) NOT NULL DEFAULT 'new',
    reviewed_by character varying(255),
    reviewed_at timestamp with time zone,
    note text,
    incident_id integer{extra},
    CONSTRAINT ck_anomalies_review_status CHECK (review_status IN
        ('new', 'acknowledged', 'confirmed', 'false_positive', 'dismissed')),
    CONSTRAINT ck_anomalies_severity CHECK (severity IN ('low', 'medium', 'high', 'critical'))
"""
NAMES = ("id, run_id, row_number, event_time, entity, anomaly_score, severity, reasons, data, "
         "review_status, reviewed_by, reviewed_at, note, incident_id")
INDEXED = ("anomaly_score", "entity", "event_time", "incident_id", "review_status",
           "severity")
COMMENTS = {
    "id": "Anomaly id.", "run_id": "detection_runs.id",
    "row_number": "Data row in the file (1 = first line after the header).",
    "event_time": "The row's timestamp (UTC).",
    "entity": "User, elevator or sensor the row is about.",
    "anomaly_score": "0-100, higher is more anomalous.",
    "severity": "low, medium, high or critical.", "reasons": "Why the row was flagged, in words.",
    "data": "The original row (JSON).",
    "review_status": "new, acknowledged, confirmed, false_positive or dismissed.",
    "reviewed_by": "Who reviewed it.", "reviewed_at": "When (UTC).",
    "note": "Reviewer's note.", "incident_id": "incidents.id: the incident the row belongs to.",
}
TABLE_COMMENT = "Flagged rows of each run, with their score, reasons and review."
KNOWN_FK = "fk_known_values_anomaly_id_anomalies"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _finish_postgresql_table(*, partitioned: bool) -> None:
    """Keys, indexes, comments and the sequence of a freshly built ``anomalies``."""
    month = ", run_created_at" if partitioned else ""
    op.execute("ALTER SEQUENCE anomalies_id_seq OWNED BY anomalies.id")
    op.execute(f"ALTER TABLE anomalies ADD CONSTRAINT pk_anomalies PRIMARY KEY (id{month})")
    op.execute("ALTER TABLE anomalies ADD CONSTRAINT fk_anomalies_run_id_detection_runs "
               "FOREIGN KEY (run_id) REFERENCES detection_runs(id) ON DELETE CASCADE")
    op.execute("ALTER TABLE anomalies ADD CONSTRAINT fk_anomalies_incident_id_incidents "
               "FOREIGN KEY (incident_id) REFERENCES incidents(id) ON DELETE CASCADE")
    for column in INDEXED:
        op.execute(f"CREATE INDEX ix_anomalies_{column} ON anomalies ({column})")
    op.execute("CREATE UNIQUE INDEX ix_anomalies_run_id_row_number ON anomalies "
               f"(run_id, row_number{month})")
    op.execute(f"COMMENT ON TABLE anomalies IS {_quoted(TABLE_COMMENT)}")
    comments = COMMENTS | ({"run_created_at": COLUMN_COMMENT} if partitioned else {})
    for column, comment in comments.items():
        op.execute(f"COMMENT ON COLUMN anomalies.{column} IS {_quoted(comment)}")


def _rebuild_postgresql(*, partitioned: bool) -> None:
    """``anomalies`` built anew (partitioned by month, or plain again), its rows copied."""
    op.execute("ALTER SEQUENCE anomalies_id_seq OWNED BY NONE")
    op.execute("ALTER TABLE anomalies RENAME TO anomalies_before")
    extra = ",\n    run_created_at timestamp with time zone NOT NULL" if partitioned else ""
    tail = " PARTITION BY RANGE (run_created_at)" if partitioned else ""
    op.execute(f"CREATE TABLE anomalies ({COLUMNS.format(extra=extra)}){tail}")
    if partitioned:
        op.execute("CREATE SCHEMA IF NOT EXISTS anomaly_months")
        op.execute("COMMENT ON SCHEMA anomaly_months IS 'The monthly partitions of "
                   "public.anomalies: query that table, not these.'")
        months = op.get_bind().execute(sa.text(
            "SELECT DISTINCT date_trunc('month', created_at AT TIME ZONE 'UTC') "
            "FROM detection_runs")).scalars().all()
        for month in months:  # the runs' months; later ones as runs are stored
            op.execute(f"CREATE TABLE anomaly_months.anomalies_{month:%Y_%m} PARTITION OF "
                       f"anomalies FOR VALUES FROM ('{month:%Y-%m-01} 00:00+00') TO "
                       f"('{_next_month(month)} 00:00+00')")
        op.execute(f"INSERT INTO anomalies ({NAMES}, run_created_at) "
                   f"SELECT {', '.join('a.' + n for n in NAMES.split(', '))}, r.created_at "
                   "FROM anomalies_before a JOIN detection_runs r ON r.id = a.run_id")
    else:
        op.execute(f"INSERT INTO anomalies ({NAMES}) SELECT {NAMES} FROM anomalies_before")
    op.execute("DROP TABLE anomalies_before")
    _finish_postgresql_table(partitioned=partitioned)


def _next_month(month) -> str:
    year, number = (month.year + 1, 1) if month.month == 12 else (month.year, month.month + 1)
    return f"{year:04d}-{number:02d}-01"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    drop_recent_anomalies()
    if dialect == "postgresql":
        op.drop_constraint(KNOWN_FK, "known_values", type_="foreignkey")
        _rebuild_postgresql(partitioned=True)
    else:
        with op.batch_alter_table("known_values") as batch:
            batch.drop_constraint(KNOWN_FK, type_="foreignkey")
        with op.batch_alter_table("anomalies") as batch:
            batch.add_column(sa.Column("run_created_at", sa.DateTime(timezone=True),
                                       nullable=True, comment=COLUMN_COMMENT))
        op.execute("UPDATE anomalies SET run_created_at = (SELECT created_at FROM "
                   "detection_runs WHERE detection_runs.id = anomalies.run_id)")
        with op.batch_alter_table("anomalies") as batch:
            batch.alter_column("run_created_at", existing_type=sa.DateTime(timezone=True),
                               nullable=False, existing_comment=COLUMN_COMMENT)
            batch.drop_index("ix_anomalies_run_id_row_number")
            batch.create_index("ix_anomalies_run_id_row_number",
                               ["run_id", "row_number", "run_created_at"], unique=True)
    create_recent_anomalies()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    drop_recent_anomalies()
    if dialect == "postgresql":
        _rebuild_postgresql(partitioned=False)
        op.execute("DROP SCHEMA IF EXISTS anomaly_months CASCADE")
        op.execute("UPDATE known_values SET anomaly_id = NULL WHERE anomaly_id NOT IN "
                   "(SELECT id FROM anomalies)")
        op.create_foreign_key(KNOWN_FK, "known_values", "anomalies", ["anomaly_id"], ["id"],
                              ondelete="SET NULL")
    else:
        with op.batch_alter_table("anomalies") as batch:
            batch.drop_index("ix_anomalies_run_id_row_number")
            batch.create_index("ix_anomalies_run_id_row_number", ["run_id", "row_number"],
                               unique=True)
            batch.drop_column("run_created_at")
        with op.batch_alter_table("known_values") as batch:
            batch.create_foreign_key(KNOWN_FK, "anomalies", ["anomaly_id"], ["id"],
                                     ondelete="SET NULL")
    create_recent_anomalies()
