"""Retention: old snapshots (and, when asked, old changes) go in small batches, so pruning
never holds a long lock while the poller writes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.models import DeliveryState
from monitor.store.tables import changes, deliveries, delivery_attempts, snapshots

BATCH = 1000


@dataclass(frozen=True, slots=True)
class Pruned:
    snapshots: int = 0
    changes: int = 0


async def prune(
    engine: AsyncEngine,
    now: float,
    *,
    snapshots_after: float | None,
    changes_after: float | None,
    batch: int = BATCH,
) -> Pruned:
    """Delete snapshots older than `snapshots_after` seconds and changes (with their
    finished deliveries) older than `changes_after`; None keeps them."""
    pruned_snapshots = pruned_changes = 0
    if snapshots_after is not None:
        old = (
            select(snapshots.c.id)
            .where(snapshots.c.observed_at < now - snapshots_after)
            .limit(batch)
        )
        while True:
            async with engine.begin() as conn:
                ids = list((await conn.execute(old)).scalars())
                if ids:
                    await conn.execute(delete(snapshots).where(snapshots.c.id.in_(ids)))
            pruned_snapshots += len(ids)
            if len(ids) < batch:
                break
            await asyncio.sleep(0)  # let the poller's transactions through between batches
    if changes_after is not None:
        pending = exists().where(
            deliveries.c.change_id == changes.c.id, deliveries.c.state == DeliveryState.PENDING
        )
        old = (
            select(changes.c.id)
            .where(changes.c.observed_at < now - changes_after, ~pending)
            .limit(batch)
        )
        while True:
            async with engine.begin() as conn:
                ids = list((await conn.execute(old)).scalars())
                if ids:
                    their = select(deliveries.c.id).where(deliveries.c.change_id.in_(ids))
                    await conn.execute(
                        delete(delivery_attempts).where(
                            delivery_attempts.c.delivery_id.in_(their.scalar_subquery())
                        )
                    )
                    await conn.execute(delete(deliveries).where(deliveries.c.change_id.in_(ids)))
                    await conn.execute(delete(changes).where(changes.c.id.in_(ids)))
            pruned_changes += len(ids)
            if len(ids) < batch:
                break
            await asyncio.sleep(0)
    return Pruned(pruned_snapshots, pruned_changes)
