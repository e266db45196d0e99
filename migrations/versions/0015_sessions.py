"""Dashboard sessions of users signed in with a password, and each user's calendar key.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_sessions_user", "sessions", ["user_id"])
    op.create_index("ix_sessions_expires", "sessions", ["expires_at"])
    with op.batch_alter_table("users") as table:
        table.add_column(sa.Column("calendar_digest", sa.String(64)))
    op.create_index("ix_users_calendar", "users", ["calendar_digest"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_users_calendar", "users")
    with op.batch_alter_table("users") as table:
        table.drop_column("calendar_digest")
    op.drop_index("ix_sessions_expires", "sessions")
    op.drop_index("ix_sessions_user", "sessions")
    op.drop_table("sessions")
