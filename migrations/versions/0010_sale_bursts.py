"""Bursts of polls around sale openings: each event's next sale opening whose burst has
not ended, found by index.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_details") as details:
        details.add_column(sa.Column("burst_sale_at", sa.Float))
    op.create_index("ix_event_details_burst", "event_details", ["burst_sale_at"])


def downgrade() -> None:
    op.drop_index("ix_event_details_burst", "event_details")
    with op.batch_alter_table("event_details") as details:
        details.drop_column("burst_sale_at")
