"""Watch writes as a log that replicas follow one event at a time, and batches found by key.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watch_changes",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_watch_changes_at", "watch_changes", ["at"])
    op.create_index("ix_batches_key", "batches", ["partition", "interval_s", "size"])


def downgrade() -> None:
    op.drop_index("ix_batches_key", "batches")
    op.drop_index("ix_watch_changes_at", "watch_changes")
    op.drop_table("watch_changes")
