"""incidents

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 08:10:00
"""

import sqlalchemy as sa
from alembic import op

from storage.migrations.views import create_recent_anomalies, drop_recent_anomalies

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATUS = "review_status IN ('new', 'acknowledged', 'confirmed', 'false_positive', 'dismissed')"
SEVERITY = "severity IN ('low', 'medium', 'high', 'critical')"


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False, comment="Incident id."),
        sa.Column("run_id", sa.Integer(), nullable=False, comment="detection_runs.id"),
        sa.Column("number", sa.Integer(), nullable=False,
                  comment="Incident number within the run, from 0 in (entity, time) order."),
        sa.Column("entity", sa.String(length=255), nullable=True,
                  comment="User, elevator or sensor; empty for the whole file."),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True,
                  comment="Time of its first flagged row (UTC)."),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True,
                  comment="Time of its last flagged row (UTC)."),
        sa.Column("row_count", sa.Integer(), nullable=False, comment="Flagged rows in it."),
        sa.Column("peak_score", sa.Float(), nullable=False,
                  comment="Highest anomaly score of its rows."),
        sa.Column("severity", sa.String(length=8), nullable=False,
                  comment="Highest severity of its rows."),
        sa.Column("summary", sa.Text(), nullable=False,
                  comment="The peak row's leading reason and the incident's extent, in words."),
        sa.Column("review_status", sa.String(length=16), server_default="new", nullable=False,
                  comment="new, acknowledged, confirmed, false_positive or dismissed."),
        sa.Column("reviewed_by", sa.String(length=255), nullable=True, comment="Who reviewed it."),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True, comment="When (UTC)."),
        sa.Column("note", sa.Text(), nullable=True, comment="Reviewer's note."),
        sa.CheckConstraint(STATUS, name=op.f("ck_incidents_review_status")),
        sa.CheckConstraint(SEVERITY, name=op.f("ck_incidents_severity")),
        sa.ForeignKeyConstraint(["run_id"], ["detection_runs.id"], ondelete="CASCADE",
                                name=op.f("fk_incidents_run_id_detection_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        comment="Flagged rows of one entity that follow each other within a gap (30 min "
                "sensors, 2 h logins): one event to review.",
    )
    for column in ("entity", "started_at", "peak_score", "severity", "review_status"):
        op.create_index(op.f(f"ix_incidents_{column}"), "incidents", [column], unique=False)
    op.create_index("ix_incidents_run_id_number", "incidents", ["run_id", "number"],
                    unique=True)
    drop_recent_anomalies()
    with op.batch_alter_table("anomalies") as batch:
        batch.add_column(sa.Column("incident_id", sa.Integer(), nullable=True,
                                   comment="incidents.id: the incident the row belongs to."))
        batch.create_index(batch.f("ix_anomalies_incident_id"), ["incident_id"], unique=False)
        batch.create_foreign_key(batch.f("fk_anomalies_incident_id_incidents"), "incidents",
                                 ["incident_id"], ["id"], ondelete="CASCADE")
    create_recent_anomalies(("incident_id",))


def downgrade() -> None:
    drop_recent_anomalies()
    with op.batch_alter_table("anomalies") as batch:
        batch.drop_constraint(batch.f("fk_anomalies_incident_id_incidents"), type_="foreignkey")
        batch.drop_index(batch.f("ix_anomalies_incident_id"))
        batch.drop_column("incident_id")
    create_recent_anomalies()
    op.drop_index("ix_incidents_run_id_number", table_name="incidents")
    for column in ("entity", "started_at", "peak_score", "severity", "review_status"):
        op.drop_index(op.f(f"ix_incidents_{column}"), table_name="incidents")
    op.drop_table("incidents")
