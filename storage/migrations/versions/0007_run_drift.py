"""run drift from the model's baseline

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("detection_runs", sa.Column(
        "drift_share", sa.Float(), nullable=True,
        comment="Scored by a registered model: share of rows outside its baseline's range on "
                "the feature where it is largest (about 0.01 from the same source; above 0.10 "
                "the model is stale). Empty when fitted on the file."))
    op.add_column("detection_runs", sa.Column(
        "drift_feature", sa.String(length=255), nullable=True,
        comment="The feature drift_share was measured on."))


def downgrade() -> None:
    op.drop_column("detection_runs", "drift_feature")
    op.drop_column("detection_runs", "drift_share")
