"""Replicas sharing one database: each says it is alive every few seconds, counts the
others, and hands back the batches of any replica that has gone silent, so a killed
process's polls resume within seconds rather than when its leases end.

Replicas compare their clocks through `seen_at`, so they need synchronised clocks (NTP), as
their due times already do.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.tables import batches, replicas

logger = logging.getLogger(__name__)

HEARTBEAT = 5.0
"""Seconds between a replica's signs of life. A beat is a write transaction, the dearest
thing an idle daemon does: every 5 s it costs about 0.4 ms of CPU a second, and a killed
replica's polls still resume within 15 s, where its leases would take a minute."""
STALE_AFTER = 3 * HEARTBEAT
"""A replica not heard from for three beats is gone: its claims are released."""
SWEEP_EVERY = 30.0
"""Seconds between sweeps for claims no live replica holds, when no replica fell silent."""
FORGET_AFTER = 86400.0


def replica_id(config_path: Path | None) -> str:
    """A fresh ID that starts with what stays the same across restarts of one daemon: its
    host and its config file. A restarted daemon knows its former claims by that prefix; a
    daemon without a config file has no former self."""
    if config_path is None:
        instance = uuid.uuid4().hex[:8]
    else:
        place = f"{socket.gethostname()}:{config_path.resolve()}"
        instance = hashlib.sha256(place.encode()).hexdigest()[:8]
    return f"{instance}-{uuid.uuid4().hex[:23]}"


class Replicas:
    def __init__(self, engine: AsyncEngine, replica_id: str, lease: float = 60.0) -> None:
        self._engine = engine
        self.id = replica_id
        self._lease = lease
        """How long a claim lasts; a live replica renews its claims well before it ends."""
        self._renewed_at = -math.inf
        self._swept_at = -math.inf
        self._alive: set[str] = set()

    async def reclaim(self, now: float) -> int:
        """Release what this daemon claimed before a restart (kill -9 included), at once
        rather than three beats later; returns how many batches."""
        instance = self.id.split("-", 1)[0]
        async with self._engine.begin() as conn:
            released = await conn.execute(
                update(batches)
                .where(
                    batches.c.claimed_by.startswith(f"{instance}-", autoescape=True),
                    batches.c.claimed_by != self.id,
                )
                .values(next_due_at=now, claimed_by=None)
            )
        if released.rowcount:
            logger.info(
                "%d batches this daemon claimed before it restarted are polled again now",
                released.rowcount,
            )
        return int(released.rowcount)

    async def beat(self, now: float) -> int:
        """Say this replica is alive and release the claims of those gone silent; returns
        how many replicas are alive (this one included).

        A beat that finds the same replicas alive costs two statements: the claims of the
        silent are swept when one falls silent, and once in a while for any claim left by
        a replica that never beat at all."""
        async with self._engine.begin() as conn:
            seen = await conn.execute(
                update(replicas).where(replicas.c.id == self.id).values(seen_at=now)
            )
            if not seen.rowcount:
                await conn.execute(insert(replicas).values(id=self.id, seen_at=now))
            if now >= self._renewed_at + self._lease / 4:
                # Requests in flight keep their batches for as long as this replica lives.
                await conn.execute(
                    update(batches)
                    .where(
                        batches.c.claimed_by == self.id,
                        batches.c.next_due_at < now + self._lease / 2,
                    )
                    .values(next_due_at=now + self._lease)
                )
                self._renewed_at = now
            known = (await conn.execute(select(replicas.c.id, replicas.c.seen_at))).all()
            alive = {replica for replica, seen_at in known if seen_at >= now - STALE_AFTER}
            released = 0
            if self._alive - alive or now >= self._swept_at + SWEEP_EVERY:
                swept = await conn.execute(
                    update(batches)
                    .where(
                        batches.c.claimed_by.is_not(None),
                        batches.c.claimed_by.not_in(sorted(alive)),
                    )
                    .values(next_due_at=now, claimed_by=None)
                )
                released = swept.rowcount
                self._swept_at = now
            if any(seen_at < now - FORGET_AFTER for _, seen_at in known):
                await conn.execute(delete(replicas).where(replicas.c.seen_at < now - FORGET_AFTER))
        self._alive = alive
        if released:
            logger.info(
                "%d batches claimed by a replica gone silent are polled again now", released
            )
        return max(1, len(alive))

    @contextlib.asynccontextmanager
    async def joined(self, clock: Callable[[], float]) -> AsyncIterator[Replicas]:
        """This replica among the others inside the block; on the way out it leaves, so that
        the others take its claims over at once."""
        try:
            yield self
        finally:
            await self.leave(clock())

    async def leave(self, now: float) -> None:
        """Stop counting as alive, and hand back what this replica still holds."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(batches)
                .where(batches.c.claimed_by == self.id)
                .values(next_due_at=now, claimed_by=None)
            )
            await conn.execute(delete(replicas).where(replicas.c.id == self.id))
