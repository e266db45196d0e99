"""Watches besides the configuration file's: events `discover:` searches found, kept until
they start, and the searches' schedule, shared by the replicas on one database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.engine import reader
from monitor.store.tables import searches, watches


class Discovered(NamedTuple):
    """An event a search found, with the settings it is watched with (as under `events:`)."""

    event_id: str
    search: str
    settings: dict[str, Any]
    added_at: float
    until: float | None


class Watches:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)

    async def discovered(self) -> list[Discovered]:
        query = select(watches).where(watches.c.origin == "discover").order_by(watches.c.event_id)
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Discovered(
                row.event_id, row.search, orjson.loads(row.settings), row.added_at, row.until
            )
            for row in rows
        ]

    async def version(self) -> tuple[int, float | None]:
        """Changes whenever a watch is added or forgotten, by any replica."""
        query = select(func.count(), func.max(watches.c.added_at))
        async with self._reader.connect() as conn:
            count, latest = (await conn.execute(query)).one()
        return int(count), latest

    async def add(self, found: Sequence[Discovered]) -> list[str]:
        """Watch what is not watched yet; returns the IDs added."""
        if not found:
            return []
        async with self.engine.begin() as conn:
            known = set(
                await conn.scalars(
                    select(watches.c.event_id).where(
                        watches.c.event_id.in_([item.event_id for item in found])
                    )
                )
            )
            new = [item for item in found if item.event_id not in known]
            if new:
                await conn.execute(
                    insert(watches),
                    [
                        {
                            "event_id": item.event_id,
                            "origin": "discover",
                            "search": item.search,
                            "settings": orjson.dumps(item.settings).decode(),
                            "added_at": item.added_at,
                            "until": item.until,
                        }
                        for item in new
                    ],
                )
        return [item.event_id for item in new]

    async def forget_started(self, before: float) -> int:
        """Stop watching what started before `before`; its history stays."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(watches).where(watches.c.origin == "discover", watches.c.until < before)
            )
        return int(result.rowcount or 0)

    async def claim_search(self, name: str, now: float, lease_until: float) -> bool:
        """Whether the search `name` is due and now this replica's to run."""
        try:
            return await self._claim_search(name, now, lease_until)
        except IntegrityError:
            return False  # another replica scheduled it first

    async def _claim_search(self, name: str, now: float, lease_until: float) -> bool:
        async with self._reader.connect() as conn:
            due = await conn.scalar(select(searches.c.next_run_at).where(searches.c.name == name))
        if due is not None and due > now:
            return False  # not due: no write, no lock
        async with self.engine.begin() as conn:
            due = await conn.scalar(
                select(searches.c.next_run_at)
                .where(searches.c.name == name)
                .with_for_update(skip_locked=True)
            )
            if due is None:
                exists = await conn.scalar(select(searches.c.name).where(searches.c.name == name))
                if exists is not None:
                    return False  # another replica is running it
                await conn.execute(insert(searches).values(name=name, next_run_at=lease_until))
                return True
            if due > now:
                return False
            await conn.execute(
                update(searches).where(searches.c.name == name).values(next_run_at=lease_until)
            )
        return True

    async def searched(self, name: str, now: float, next_run_at: float, matched: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(searches)
                .where(searches.c.name == name)
                .values(next_run_at=next_run_at, last_run_at=now, last_matched=matched)
            )
