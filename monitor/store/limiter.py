"""One request rate and one daily quota for every replica sharing a PostgreSQL database:
GCRA over one row.

The row holds the slot of the latest request (its `tat` column). Each request takes the next
slot, one emission interval, `1 / rate`, after it (or now, if that is later), in one
`UPDATE ... RETURNING`, and waits until its slot, so however many replicas share the key,
requests leave the cluster spaced by that interval. Time is the database server's, so the
replicas' clocks need not agree.

The same statement spends one unit of the quota the answers' `Rate-Limit-Available`
headers reported, so the replicas together never send the request past the last one; when
none is left, every replica is held until the reset. While a reset is known, the interval is
also never shorter than the time left over what is left: the cluster spends its quota
evenly until the reset (see `upstream.ratelimit`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import Float, and_, case, cast, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.errors import Held
from monitor.models import Quota
from monitor.store.tables import rate_limits
from monitor.upstream.health import UNKNOWN_RESET_WAIT
from monitor.upstream.quota import quota_pace

_DB_NOW = cast(func.extract("epoch", func.clock_timestamp()), Float)


class SharedLimiter:
    """`rate` requests a second across the cluster; callers wait for their slot."""

    def __init__(
        self,
        engine: AsyncEngine,
        rate: float,
        name: str = "ticketmaster",
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._name = name
        self._sleep = sleep
        self.rate = rate
        self._quota: Quota | None = None
        """What the last answer here said is left, and when it resets (this replica's
        clock): for `within`, which sizes this replica's claims."""

    def set_rate(self, rate: float) -> None:
        self.rate = rate

    async def ensure(self) -> None:
        """Create the row if no replica has yet."""
        async with self._engine.begin() as conn:
            await conn.execute(
                pg_insert(rate_limits)
                .values(name=self._name, tat=0.0)  # no slot given yet: the next is now
                .on_conflict_do_nothing(index_elements=["name"])
            )

    async def acquire(self) -> None:
        wait = await self.reserve()
        if wait > 0:
            await self._sleep(wait)

    def within(self, seconds: float) -> int:
        paced = None if self._quota is None else quota_pace(self._quota, self._clock(), self.rate)
        return max(1, int(seconds * self.rate if paced is None else seconds / paced))

    async def reserve(self) -> float:
        """Take the next slot and a unit of the quota; returns the seconds until the slot.
        Raises Held while the cluster has no quota left."""
        now = select(_DB_NOW).scalar_subquery()
        column = rate_limits.c
        passed = column.quota_reset_at <= now  # NULL, so false, while no reset is known
        known = column.quota_available.is_not(None)
        interval = case(
            (
                and_(known, column.quota_reset_at > now),
                func.greatest(
                    literal(1.0 / self.rate),
                    # What is left over the time from the latest slot to the reset.
                    (column.quota_reset_at - func.greatest(column.tat, now))
                    / func.greatest(column.quota_available, 1),
                ),
            ),
            else_=literal(1.0 / self.rate),
        )
        reserve = (
            update(rate_limits)
            .where(
                column.name == self._name,
                or_(~known, column.quota_available > 0, passed),
            )
            .values(
                tat=func.greatest(column.tat + interval, now),
                quota_available=case(
                    (passed, None),
                    (known, column.quota_available - 1),
                    else_=column.quota_available,
                ),
                quota_reset_at=case((passed, None), else_=column.quota_reset_at),
            )
            .returning(column.tat - _DB_NOW)
        )
        async with self._engine.begin() as conn:
            wait = (await conn.execute(reserve)).scalar_one_or_none()
            if wait is None:
                raise Held(await self._hold(conn))
        return max(0.0, float(wait))

    async def _hold(self, conn: AsyncConnection) -> float:
        """Until when the used-up quota holds, on this replica's clock; a reset nobody
        reported is taken to be an hour away, so the hold always ends."""
        row = (
            await conn.execute(
                select(rate_limits.c.quota_reset_at, _DB_NOW).where(
                    rate_limits.c.name == self._name
                )
            )
        ).one()
        reset_at, db_now = row
        if reset_at is None:
            reset_at = db_now + UNKNOWN_RESET_WAIT
            await conn.execute(
                update(rate_limits)
                .where(rate_limits.c.name == self._name)
                .values(quota_reset_at=reset_at)
            )
        return float(self._clock() + (reset_at - db_now))

    async def observe_quota(self, available: int | None, reset_at: float | None) -> None:
        """What an answer's headers said is left: the count only ever falls until a reset,
        so an answer that arrives late cannot give back what others have spent since."""
        if available is None:
            return
        if reset_at is not None:
            self._quota = Quota(available=available, reset_at=reset_at)
        column = rate_limits.c
        async with self._engine.begin() as conn:
            await conn.execute(
                update(rate_limits)
                .where(column.name == self._name)
                .values(
                    quota_available=case(
                        (column.quota_available.is_(None), literal(available)),
                        else_=func.least(column.quota_available, literal(available)),
                    ),
                    quota_reset_at=(
                        column.quota_reset_at if reset_at is None else literal(reset_at)
                    ),
                )
            )
