"""stream checkpoints

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_checkpoints",
        sa.Column("source", sa.String(length=255), nullable=False,
                  comment="The stream's name (--source)."),
        sa.Column("run_id", sa.Integer(), nullable=False,
                  comment="detection_runs.id of the live run."),
        sa.Column("position", sa.BigInteger(), nullable=False,
                  comment="Data rows scored and stored."),
        sa.Column("carried", sa.LargeBinary(), nullable=False,
                  comment="The rows the next batch needs (each entity's recent readings), "
                          "pickled."),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                  comment="Last batch (UTC)."),
        sa.ForeignKeyConstraint(["run_id"], ["detection_runs.id"], ondelete="CASCADE",
                                name=op.f("fk_stream_checkpoints_run_id_detection_runs")),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_stream_checkpoints")),
        comment="Where each live stream (vigil stream --save) has got to: written with its "
                "rows, so a restart neither loses nor repeats any.",
    )


def downgrade() -> None:
    op.drop_table("stream_checkpoints")
