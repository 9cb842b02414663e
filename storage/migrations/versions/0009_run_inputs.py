"""the rows of stored sensor and generic files, for training from runs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_inputs",
        sa.Column("run_id", sa.Integer(), nullable=False, comment="detection_runs.id."),
        sa.Column("row_count", sa.Integer(), nullable=False, comment="Data rows kept."),
        sa.Column("content", sa.LargeBinary(), nullable=False,
                  comment="The file's rows (Parquet, zstd; the index is the row number)."),
        sa.ForeignKeyConstraint(["run_id"], ["detection_runs.id"],
                                name=op.f("fk_run_inputs_run_id_detection_runs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_inputs")),
        comment="The rows of a stored sensor or generic file, as read (Parquet): what "
                "`vigil train --from-runs` and Models train a model on, leaving out the "
                "rows reviewed as confirmed.",
    )


def downgrade() -> None:
    op.drop_table("run_inputs")
