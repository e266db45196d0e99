"""Watches that do not come from the configuration file: events found by `discover:`
searches, kept until they start, and when each search runs next.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watches",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("search", sa.String(64)),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("added_at", sa.Float, nullable=False),
        sa.Column("until", sa.Float),
    )
    op.create_table(
        "searches",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("next_run_at", sa.Float, nullable=False),
        sa.Column("last_run_at", sa.Float),
        sa.Column("last_matched", sa.Integer),
    )


def downgrade() -> None:
    op.drop_table("searches")
    op.drop_table("watches")
