"""One request rate for every replica sharing a PostgreSQL database: GCRA over one row.

The row holds the theoretical arrival time (TAT) of the next request. Each request moves it
on by one emission interval, `1 / rate`, in one `UPDATE ... RETURNING`, and waits until its
slot, so however many replicas share the key, requests leave the cluster spaced by that
interval. Time is the database server's, so the replicas' clocks need not agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.tables import rate_limits

_DB_NOW = func.extract("epoch", func.clock_timestamp())


class SharedLimiter:
    """`rate` requests a second across the cluster; callers wait for their slot."""

    def __init__(
        self,
        engine: AsyncEngine,
        rate: float,
        name: str = "ticketmaster",
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._engine = engine
        self._name = name
        self._sleep = sleep
        self.rate = rate

    def set_rate(self, rate: float) -> None:
        self.rate = rate

    async def ensure(self) -> None:
        """Create the row if no replica has yet."""
        async with self._engine.begin() as conn:
            await conn.execute(
                pg_insert(rate_limits)
                .values(name=self._name, tat=select(_DB_NOW).scalar_subquery())
                .on_conflict_do_nothing(index_elements=["name"])
            )

    async def acquire(self) -> None:
        wait = await self.reserve()
        if wait > 0:
            await self._sleep(wait)

    async def reserve(self) -> float:
        """Take the next slot; returns the seconds until it."""
        interval = 1.0 / self.rate
        now = select(_DB_NOW).scalar_subquery()
        slot = func.greatest(rate_limits.c.tat, now)
        reserve = (
            update(rate_limits)
            .where(rate_limits.c.name == self._name)
            .values(tat=slot + literal(interval))
            .returning(rate_limits.c.tat - literal(interval) - _DB_NOW)
        )
        async with self._engine.begin() as conn:
            wait = await conn.scalar(reserve)
        return max(0.0, float(wait or 0.0))
