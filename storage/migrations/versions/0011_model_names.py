"""models get a name (vigil train --name pumps)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 17:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as table:
        table.add_column(sa.Column(
            "name", sa.String(length=64), nullable=True,
            comment="What the model is for, e.g. pumps (vigil train --name); --model NAME "
                    "takes its newest version."))
        table.create_index("ix_model_versions_name", ["name"])


def downgrade() -> None:
    with op.batch_alter_table("model_versions") as table:
        table.drop_index("ix_model_versions_name")
        table.drop_column("name")
