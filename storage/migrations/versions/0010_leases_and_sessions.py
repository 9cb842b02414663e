"""stream leases (one writer a stream) and server-side dashboard sessions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stream_leases",
        sa.Column("source", sa.String(length=255), nullable=False,
                  comment="The stream's name (--source)."),
        sa.Column("holder", sa.String(length=255), nullable=False,
                  comment="Who writes it: a process (host, pid) or an API batch."),
        sa.Column("host", sa.String(length=255), nullable=False,
                  comment="The writer's host name."),
        sa.Column("pid", sa.Integer(), nullable=False,
                  comment="The writer's process id on that host."),
        sa.Column("acquired_at", Timestamp, nullable=False,
                  comment="When it took the stream (UTC)."),
        sa.Column("expires_at", Timestamp, nullable=False,
                  comment="Renewed while the writer runs; after it (UTC), another may take "
                          "the stream."),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_stream_leases")),
        comment="Which process writes each live stream: one writer a stream, so no batch "
                "is lost between two.",
    )
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False, comment="Session id."),
        sa.Column("token_hash", sa.String(length=64), nullable=False,
                  comment="sha256 of the browser's session id."),
        sa.Column("user_id", sa.Integer(), nullable=False, comment="users.id"),
        sa.Column("created_at", Timestamp, nullable=False, comment="Signed in at (UTC)."),
        sa.Column("seen_at", Timestamp, nullable=False, comment="Last page shown (UTC)."),
        sa.Column("ended_at", Timestamp, nullable=True,
                  comment="Signed out, disabled, password changed or idle (UTC)."),
        sa.Column("ended_why", sa.String(length=32), nullable=True, comment="Why it ended."),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name=op.f("fk_user_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_sessions_token_hash")),
        comment="Dashboard sign-ins: a browser holds only a random id (HttpOnly cookie); "
                "disabling the user, changing their password or signing out ends the "
                "session at once.",
    )
    op.create_index(op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_user_sessions_user_id"), table_name="user_sessions")
    op.drop_table("user_sessions")
    op.drop_table("stream_leases")
