"""Requests as full as they may be: each batch knows its size, so a request with room takes
other batches along, and the request size learnt for each endpoint outlives a restart.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batches:
        batches.add_column(sa.Column("size", sa.Integer, nullable=False, server_default="0"))
    op.execute(
        "UPDATE batches SET size = (SELECT count(*) FROM events WHERE events.batch_id = batches.id)"
    )
    op.create_index("ix_batches_partition_due", "batches", ["partition", "next_due_at"])
    op.create_table(
        "request_sizes",
        sa.Column("endpoint", sa.String(200), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("learnt_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("request_sizes")
    op.drop_index("ix_batches_partition_due", "batches")
    with op.batch_alter_table("batches") as batches:
        batches.drop_column("size")
