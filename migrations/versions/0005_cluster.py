"""Replicas share one rate and one quota, and fail over fast: batches name the replica that
claimed them, a row holds the cluster's next request slot and what is left of the daily
quota, and quota figures take 64 bits.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(32)))
    with op.batch_alter_table("upstream") as upstream:
        upstream.alter_column("quota_limit", type_=sa.BigInteger, existing_type=sa.Integer)
        upstream.alter_column("quota_available", type_=sa.BigInteger, existing_type=sa.Integer)
    op.create_table(
        "rate_limits",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("tat", sa.Float, nullable=False),
        sa.Column("quota_available", sa.BigInteger),
        sa.Column("quota_reset_at", sa.Float),
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    with op.batch_alter_table("upstream") as upstream:
        upstream.alter_column("quota_available", type_=sa.Integer, existing_type=sa.BigInteger)
        upstream.alter_column("quota_limit", type_=sa.Integer, existing_type=sa.BigInteger)
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("claimed_by")
