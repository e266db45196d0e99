"""Changes of more kinds than availability: an event's lifecycle (cancelled, postponed, …)
and a sale window opening, stored, routed and delivered like any change.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("changes") as changes:
        changes.add_column(
            sa.Column("kind", sa.String(16), nullable=False, server_default="inventory")
        )
        changes.add_column(sa.Column("detail", sa.Text))
    with op.batch_alter_table("event_details") as details:
        details.add_column(sa.Column("sales_seen_until", sa.Float))
        details.add_column(sa.Column("next_sale_at", sa.Float))
    op.create_index("ix_event_details_sale", "event_details", ["next_sale_at"])


def downgrade() -> None:
    op.drop_index("ix_event_details_sale", "event_details")
    with op.batch_alter_table("event_details") as details:
        details.drop_column("next_sale_at")
        details.drop_column("sales_seen_until")
    with op.batch_alter_table("changes") as changes:
        changes.drop_column("detail")
        changes.drop_column("kind")
