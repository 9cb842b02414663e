"""The ``recent_anomalies`` view, shared by the migrations that build or change it.

SQLite rebuilds a table to alter it, and refuses while a view names the table: a
migration that alters ``anomalies`` drops the view first and creates it again after.
"""

from alembic import op

# Anomalies of runs stored in the last 30 days, newest and worst first, with the file
# they came from: the first thing to open in Adminer.
RECENT_ANOMALIES = """
CREATE VIEW recent_anomalies AS
SELECT a.id, r.id AS run_id, r.created_at AS run_created_at, r.source_name, r.profile,
       a.row_number, a.event_time, a.entity, a.anomaly_score, a.severity, a.reasons,
       a.review_status, a.reviewed_by, a.reviewed_at, a.note{extra}
FROM anomalies a JOIN detection_runs r ON r.id = a.run_id
WHERE r.created_at >= {since}
"""
SINCE = {"postgresql": "now() - interval '30 days'", "sqlite": "datetime('now', '-30 days')"}


def create_recent_anomalies(extra_columns: tuple[str, ...] = ()) -> None:
    dialect = op.get_bind().dialect.name
    extra = "".join(f", a.{column}" for column in extra_columns)
    op.execute(RECENT_ANOMALIES.format(since=SINCE.get(dialect, SINCE["postgresql"]),
                                       extra=extra))
    if dialect == "postgresql":
        op.execute("COMMENT ON VIEW recent_anomalies IS 'Anomalies of runs stored in the last "
                   "30 days, with the file they came from. Sort by anomaly_score or event_time.'")


def drop_recent_anomalies() -> None:
    op.execute("DROP VIEW recent_anomalies")
