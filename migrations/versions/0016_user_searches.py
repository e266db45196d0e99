"""Users' own searches, and the subscriptions they found, each kept until its event starts.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_searches",
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("filters", sa.Text, nullable=False),
        sa.Column("added_at", sa.Float, nullable=False),
    )
    with op.batch_alter_table("subscriptions") as table:
        table.add_column(sa.Column("search", sa.String(40)))
        table.add_column(sa.Column("until", sa.Float))
    op.create_index("ix_subscriptions_until", "subscriptions", ["until"])


def downgrade() -> None:
    op.drop_index("ix_subscriptions_until", "subscriptions")
    with op.batch_alter_table("subscriptions") as table:
        table.drop_column("until")
        table.drop_column("search")
    op.drop_table("user_searches")
