"""Indexes for reading: snapshot times (retention finds old snapshots without a table
scan) and event statuses (the API and dashboard filter by status).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_snapshots_time", "snapshots", ["observed_at"])
    op.create_index("ix_events_status", "events", ["status", "event_id"])


def downgrade() -> None:
    op.drop_index("ix_events_status", "events")
    op.drop_index("ix_snapshots_time", "snapshots")
