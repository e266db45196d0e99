"""Accounts: users with their tokens, channels and subscriptions.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("changed_at", sa.Float, nullable=False),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_index("ix_users_changed", "users", ["changed_at"])
    op.create_table(
        "user_tokens",
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_user_tokens_user", "user_tokens", ["user_id"])
    op.create_table(
        "channels",
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("name", sa.String(30), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "subscriptions",
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("snoozed_until", sa.Float),
        sa.Column("added_at", sa.Float, nullable=False),
    )
    op.create_index("ix_subscriptions_event", "subscriptions", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_subscriptions_event", "subscriptions")
    op.drop_table("subscriptions")
    op.drop_table("channels")
    op.drop_index("ix_user_tokens_user", "user_tokens")
    op.drop_table("user_tokens")
    op.drop_index("ix_users_changed", "users")
    op.drop_table("users")
