"""alert routing set on the Alerts page

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_routes",
        sa.Column("key", sa.String(length=32), nullable=False,
                  comment="to_security, to_maintenance or min_severity."),
        sa.Column("value", sa.String(length=2000), nullable=False,
                  comment="Addresses (comma-separated) or a severity."),
        sa.Column("updated_by", sa.String(length=255), nullable=False, comment="Who set it."),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                  comment="When (UTC)."),
        sa.CheckConstraint("key IN ('to_security', 'to_maintenance', 'min_severity')",
                           name=op.f("ck_alert_routes_key")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_alert_routes")),
        comment="Who receives alerts, set on the Alerts page: a row overrides its "
                "environment setting (ALERT_TO_SECURITY, ALERT_TO_MAINTENANCE, "
                "ALERT_MIN_SEVERITY).",
    )


def downgrade() -> None:
    op.drop_table("alert_routes")
