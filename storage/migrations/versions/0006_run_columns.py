"""run columns in file order

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("detection_runs", sa.Column(
        "columns", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True,
        comment="The file's column names in file order (JSONB keeps an anomaly's data keys "
                "in its own order; downloads follow this one)."))


def downgrade() -> None:
    op.drop_column("detection_runs", "columns")
