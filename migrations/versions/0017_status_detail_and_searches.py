"""Why Ticketmaster answered UNKNOWN (the answer's `statusDetail` and `resaleStatusDetail`),
and batches of the events it does not know, which never ride along; searches followed at
runtime.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as table:
        table.add_column(sa.Column("status_detail", sa.String(64)))
        table.add_column(sa.Column("resale_status_detail", sa.String(64)))
    with op.batch_alter_table("batches") as table:
        table.add_column(
            sa.Column("invalid", sa.Boolean, nullable=False, server_default=sa.false())
        )

    with op.batch_alter_table("searches") as table:
        table.add_column(sa.Column("filters", sa.Text))
        table.add_column(sa.Column("added_at", sa.Float))
        table.add_column(sa.Column("added_by", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("searches") as table:
        table.drop_column("added_by")
        table.drop_column("added_at")
        table.drop_column("filters")
    with op.batch_alter_table("batches") as table:
        table.drop_column("invalid")
    with op.batch_alter_table("events") as table:
        table.drop_column("resale_status_detail")
        table.drop_column("status_detail")
