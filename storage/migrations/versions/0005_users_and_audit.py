"""users and audit events

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 11:40:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False, comment="User id."),
        sa.Column("name", sa.String(length=255), nullable=False, comment="Sign-in name."),
        sa.Column("role", sa.String(length=16), nullable=False,
                  comment="viewer, analyst or admin."),
        sa.Column("password_hash", sa.String(length=255), nullable=True,
                  comment="argon2id hash; empty for single sign-on only accounts."),
        sa.Column("email", sa.String(length=255), nullable=True,
                  comment="E-mail, matched on single sign-on."),
        sa.Column("disabled", sa.Boolean(), server_default="0", nullable=False,
                  comment="A disabled account cannot sign in."),
        sa.Column("failed_attempts", sa.Integer(), server_default="0", nullable=False,
                  comment="Failed sign-ins in a row."),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True,
                  comment="Sign-in refused until then (UTC), after 5 failures in a row."),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  comment="When it was made (UTC)."),
        sa.Column("signed_in_at", sa.DateTime(timezone=True), nullable=True,
                  comment="Last sign-in (UTC)."),
        sa.CheckConstraint("role IN ('viewer', 'analyst', 'admin')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
        comment="Dashboard accounts (vigil users): argon2id password hashes, roles, lockout "
                "after failed sign-ins.",
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False, comment="Event id."),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, comment="When (UTC)."),
        sa.Column("actor", sa.String(length=255), nullable=False,
                  comment="Who: a user, a token (token:NAME) or the command line "
                          "(cli:OS-USER)."),
        sa.Column("action", sa.String(length=64), nullable=False,
                  comment="What, e.g. anomaly.review, model.activate."),
        sa.Column("target", sa.String(length=255), nullable=False,
                  comment="What it was done to, e.g. anomaly 17, model VERSION."),
        sa.Column("before", Json, nullable=True, comment="The state before (JSON)."),
        sa.Column("after", Json, nullable=True, comment="The state after (JSON)."),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        comment="Who did what: reviews, alerts sent, models trained, activated and rolled "
                "back, users and tokens.",
    )
    op.create_index(op.f("ix_audit_events_action"), "audit_events", ["action"])
    op.create_index(op.f("ix_audit_events_actor"), "audit_events", ["actor"])
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"])
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column(
            "user_id", sa.Integer(), nullable=True,
            comment="users.id of its owner: the token carries at most their role, and stops "
                    "working when they are disabled."))
        batch.create_foreign_key(op.f("fk_api_tokens_user_id_users"), "users", ["user_id"],
                                 ["id"], ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_constraint(op.f("fk_api_tokens_user_id_users"), type_="foreignkey")
        batch.drop_column("user_id")
    op.drop_table("audit_events")
    op.drop_table("users")
