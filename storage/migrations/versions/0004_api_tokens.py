"""api tokens

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 11:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False, comment="Token id."),
        sa.Column("name", sa.String(length=255), nullable=False,
                  comment="Who or what uses it (a system, a job)."),
        sa.Column("role", sa.String(length=16), nullable=False,
                  comment="viewer, analyst or admin."),
        sa.Column("token_hash", sa.String(length=64), nullable=False,
                  comment="sha256 of the token (the token is shown once)."),
        sa.Column("prefix", sa.String(length=16), nullable=False,
                  comment="The token's first characters, to tell tokens apart."),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  comment="When it was made (UTC)."),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True,
                  comment="When it was revoked (UTC); a revoked token is refused."),
        sa.CheckConstraint("role IN ('viewer', 'analyst', 'admin')",
                           name=op.f("ck_api_tokens_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_api_tokens_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
        comment="Bearer tokens of the HTTP API (vigil tokens add): only a hash is kept.",
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
