"""known values from false-positive reviews; runs keep their column mapping

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 04:10:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("detection_runs", sa.Column(
        "mapping", JSON, nullable=True,
        comment='Which column played which role, e.g. {"user": "username"} (JSON; empty for '
                "runs stored before it was kept)."))
    op.create_table(
        "known_values",
        sa.Column("id", sa.Integer(), nullable=False, comment="Known value id."),
        sa.Column("user_name", sa.String(length=255), nullable=False,
                  comment="The login user."),
        sa.Column("key", sa.String(length=16), nullable=False,
                  comment="country, city, ip, network, asn or device."),
        sa.Column("value", sa.String(length=1000), nullable=False,
                  comment="The value, as the file had it."),
        sa.Column("added_by", sa.String(length=255), nullable=False,
                  comment="Who reviewed the row."),
        sa.Column("added_at", sa.DateTime(timezone=True),
                  server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False,
                  comment="When (UTC)."),
        sa.Column("anomaly_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=True,
                  comment="anomalies.id: the row reviewed as a false positive."),
        sa.CheckConstraint(
            "key IN ('country', 'city', 'ip', 'network', 'asn', 'device')",
            name=op.f("ck_known_values_key")),
        sa.ForeignKeyConstraint(["anomaly_id"], ["anomalies.id"],
                                name=op.f("fk_known_values_anomaly_id_anomalies"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_known_values")),
        comment="Values analysts marked as normal for a login user (the country, IP, "
                "device... of a row reviewed as a false positive): later login runs count "
                "them as the user's known history.",
    )
    op.create_index(op.f("ix_known_values_anomaly_id"), "known_values", ["anomaly_id"])
    op.create_index("ix_known_values_user_name_key_value", "known_values",
                    ["user_name", "key", "value"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_known_values_user_name_key_value", table_name="known_values")
    op.drop_index(op.f("ix_known_values_anomaly_id"), table_name="known_values")
    op.drop_table("known_values")
    op.drop_column("detection_runs", "mapping")
