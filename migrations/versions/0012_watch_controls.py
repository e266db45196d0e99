"""Watches managed without editing YAML: watches added through the API or the CLI, any
watch paused or snoozed, and an audit of every such write.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("watches") as watches:
        watches.add_column(
            sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false())
        )
        watches.add_column(sa.Column("snoozed_until", sa.Float))
        watches.add_column(sa.Column("changed_at", sa.Float))
    op.execute("UPDATE watches SET changed_at = added_at")
    op.create_table(
        "audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("who", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_audit_event", "audit", ["event_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_event", "audit")
    op.drop_table("audit")
    with op.batch_alter_table("watches") as watches:
        watches.drop_column("changed_at")
        watches.drop_column("snoozed_until")
        watches.drop_column("paused")
