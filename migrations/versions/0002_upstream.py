"""Batches per ticketing source and region with a failure count for backoff, and the
upstream's health and quota, so a restart or another replica knows where they stood.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("partition", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("failures", sa.Integer, nullable=False, server_default="0"))

    upstream = op.create_table(
        "upstream",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("health", sa.String(32), nullable=False),
        sa.Column("since", sa.Float),
        sa.Column("paused_until", sa.Float),
        sa.Column("last_error", sa.Text),
        sa.Column("last_success_at", sa.Float),
        sa.Column("quota_limit", sa.Integer),
        sa.Column("quota_available", sa.Integer),
        sa.Column("quota_reset_at", sa.Float),
    )
    op.bulk_insert(upstream, [{"name": "ticketmaster", "health": "ok"}])


def downgrade() -> None:
    op.drop_table("upstream")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("failures")
        batch.drop_column("partition")
