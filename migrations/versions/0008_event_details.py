"""What the Discovery API knows about each watched event, and each event's own link and
market, so messages name the show, its date and venue, and link to the right site.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as events:
        events.add_column(sa.Column("link", sa.Text))
        events.add_column(sa.Column("market", sa.String(8)))
    op.create_table(
        "event_details",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("found", sa.Boolean, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("url", sa.Text),
        sa.Column("starts_at", sa.Float),
        sa.Column("local_date", sa.String(10)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("venue_name", sa.Text),
        sa.Column("venue_city", sa.Text),
        sa.Column("venue_country", sa.String(8)),
        sa.Column("lifecycle", sa.String(16)),
        sa.Column("sales", sa.Text),
        sa.Column("price_low", sa.Float),
        sa.Column("price_high", sa.Float),
        sa.Column("price_currency", sa.String(8)),
        sa.Column("fetched_at", sa.Float),
        sa.Column("next_fetch_at", sa.Float, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_event_details_due", "event_details", ["next_fetch_at"])


def downgrade() -> None:
    op.drop_index("ix_event_details_due", "event_details")
    op.drop_table("event_details")
    with op.batch_alter_table("events") as events:
        events.drop_column("market")
        events.drop_column("link")
