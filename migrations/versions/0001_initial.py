"""Batches with their due times, events with their accepted state, snapshots, changes
and the delivery outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("interval_s", sa.Float, nullable=False),
        sa.Column("next_due_at", sa.Float, nullable=False),
        sa.Column("last_polled_at", sa.Float),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("ix_batches_due", "batches", ["next_due_at"])

    op.create_table(
        "events",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("batch_id", sa.String(32), sa.ForeignKey("batches.id")),
        sa.Column("status", sa.String(32)),
        sa.Column("resale_status", sa.String(32)),
        sa.Column("unknown_streak", sa.Integer, nullable=False),
        sa.Column("read_in_last_poll", sa.Boolean, nullable=False),
        sa.Column("first_seen_at", sa.Float),
        sa.Column("last_seen_at", sa.Float),
        sa.Column("last_changed_at", sa.Float),
        sa.Column("last_snapshot_at", sa.Float),
    )
    op.create_index("ix_events_batch", "events", ["batch_id"])

    op.create_table(
        "snapshots",
        sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("resale_status", sa.String(32), nullable=False),
        sa.Column("observed_at", sa.Float, nullable=False),
    )
    op.create_index("ix_snapshots_event_time", "snapshots", ["event_id", "observed_at"])

    op.create_table(
        "changes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_name", sa.Text),
        sa.Column("previous_status", sa.String(32)),
        sa.Column("previous_resale_status", sa.String(32)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("resale_status", sa.String(32), nullable=False),
        sa.Column("observed_at", sa.Float, nullable=False),
    )
    op.create_index("ix_changes_event_time", "changes", ["event_id", "observed_at"])
    op.create_index("ix_changes_time", "changes", ["observed_at"])

    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("change_id", sa.String(36), sa.ForeignKey("changes.id"), nullable=False),
        sa.Column("notifier", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("cooldown_s", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_deliveries_due", "deliveries", ["state", "next_attempt_at"])
    op.create_index("ix_deliveries_change", "deliveries", ["change_id"])

    op.create_table(
        "delivery_attempts",
        sa.Column("id", _ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(36), sa.ForeignKey("deliveries.id"), nullable=False),
        sa.Column("attempted_at", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_delivery_attempts_delivery", "delivery_attempts", ["delivery_id"])


def downgrade() -> None:
    op.drop_table("delivery_attempts")
    op.drop_table("deliveries")
    op.drop_table("changes")
    op.drop_table("snapshots")
    op.drop_table("events")
    op.drop_table("batches")
