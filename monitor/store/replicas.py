"""Replicas sharing one database: each says it is alive now and then, and counts the
others, so that together they keep to the API key's request rate."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.tables import replicas

ALIVE_FOR = 30.0
"""A replica not heard from for this long is gone."""


class Replicas:
    def __init__(self, engine: AsyncEngine, replica_id: str) -> None:
        self._engine = engine
        self.id = replica_id

    async def beat(self, now: float) -> int:
        """Say this replica is alive; returns how many are (this one included)."""
        async with self._engine.begin() as conn:
            seen = await conn.execute(
                update(replicas).where(replicas.c.id == self.id).values(seen_at=now)
            )
            if not seen.rowcount:
                await conn.execute(insert(replicas).values(id=self.id, seen_at=now))
            await conn.execute(delete(replicas).where(replicas.c.seen_at < now - 86400))
            alive = await conn.scalar(
                select(func.count())
                .select_from(replicas)
                .where(replicas.c.seen_at >= now - ALIVE_FOR)
            )
        return max(1, int(alive or 0))

    async def leave(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(replicas).where(replicas.c.id == self.id))
