"""the partitions of a run scored on a cluster

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 19:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_partitions",
        sa.Column("run_id", sa.Integer(), nullable=False, comment="detection_runs.id."),
        sa.Column("partition", sa.Integer(), nullable=False,
                  comment="Partition number, from 0."),
        sa.Column("row_count", sa.Integer(), nullable=False,
                  comment="Rows the partition scored."),
        sa.Column("anomaly_count", sa.Integer(), nullable=False, comment="Rows it flagged."),
        sa.Column("saved_at", sa.DateTime(timezone=True),
                  server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False,
                  comment="When (UTC)."),
        sa.ForeignKeyConstraint(["run_id"], ["detection_runs.id"], ondelete="CASCADE",
                                name=op.f("fk_run_partitions_run_id_detection_runs")),
        sa.PrimaryKeyConstraint("run_id", "partition", name=op.f("pk_run_partitions")),
        comment="The partitions of a run scored on a cluster (`--engine dask --save`) whose "
                "anomalies are stored: a partition is stored once, however often a retried "
                "worker scores it.",
    )


def downgrade() -> None:
    op.drop_table("run_partitions")
