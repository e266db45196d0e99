"""Searches followed at runtime: an artist, a venue, a keyword, kept as a `discover:` entry
says it, and run beside the configuration file's own (see `discovery_jobs.discoverer`).

They live in the table that keeps every search's schedule, so that a search has one row
whoever declared it, and every replica reads the same ones.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.engine import reader
from monitor.store.tables import searches


class Followed(NamedTuple):
    name: str
    filters: dict[str, Any]
    """As an entry under `discover:` says it, without its name."""
    added_at: float
    added_by: str
    last_run_at: float | None = None
    last_matched: int | None = None


class Searches:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)

    async def followed(self) -> list[Followed]:
        """Every search followed at runtime, by name."""
        query = select(searches).where(searches.c.filters.is_not(None)).order_by(searches.c.name)
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Followed(
                row.name,
                orjson.loads(row.filters),
                row.added_at,
                row.added_by,
                row.last_run_at,
                row.last_matched,
            )
            for row in rows
        ]

    async def follow(self, search: Followed) -> bool:
        """Follow `search`, due at once; False when one of that name is followed already.
        The schedule of a search of that name that the configuration file no longer has
        is taken over."""
        filters = orjson.dumps(search.filters).decode()
        values = {"filters": filters, "added_at": search.added_at, "added_by": search.added_by}
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(searches.c.filters)
                    .where(searches.c.name == search.name)
                    .with_for_update()
                )
            ).first()
            if row is None:
                await conn.execute(
                    insert(searches).values(name=search.name, next_run_at=search.added_at, **values)
                )
                return True
            if row.filters is not None:
                return False
            await conn.execute(
                update(searches)
                .where(searches.c.name == search.name)
                .values(next_run_at=search.added_at, **values)
            )
        return True

    async def unfollow(self, name: str) -> bool:
        """Stop the search `name`; what it found stays until it starts. False when no
        search of that name is followed."""
        async with self.engine.begin() as conn:
            gone = await conn.execute(
                delete(searches).where(searches.c.name == name, searches.c.filters.is_not(None))
            )
        return bool(gone.rowcount)
