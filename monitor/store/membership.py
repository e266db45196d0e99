"""One watch at a time: an event joins, moves between or leaves batches without the
watchlist being planned again.

A full sync (`Repository.sync_watchlist`) reads every event and batch; it runs at start and
on a reload. Every other write (a watch added, changed, paused or removed through the API,
the CLI, a search, or another replica) touches only the rows of the events it names and of
the batches they join or leave, so it costs the same with 100 watches as with 100,000. Each
touched batch's version moves on, which is all a poller's cache needs to know: those
batches' states are read again at their next claim, and no other batch's are.

Applying the same change twice changes nothing the second time, so every replica may apply
what the watch log says, and a race between two of them ends in one of them retrying.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, exists, false, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.models import STATUS_BY_NAME
from monitor.store.records import BatchKey, Watched
from monitor.store.tables import batches, event_details, events

_MEMBERS = select(func.count()).where(events.c.batch_id == batches.c.id).scalar_subquery()
ATTEMPTS = 3
"""Tries when another writer applies the same change at the same moment (PostgreSQL)."""


@dataclass(slots=True)
class Applied:
    """What a set of watch changes did to the watched set."""

    added: list[str] = field(default_factory=list)
    """Newly watched (not watched before)."""
    removed: list[str] = field(default_factory=list)
    """No longer watched."""


async def apply_watches(
    engine: AsyncEngine,
    changes: Mapping[str, Watched | None],
    batch_size: int,
    now: float,
    new_id: Callable[[], str],
) -> Applied:
    """Make each event of `changes` watched as its value says, or (None) not watched."""
    for attempt in range(ATTEMPTS):
        try:
            async with engine.begin() as conn:
                return await _apply(conn, changes, batch_size, now, new_id)
        except IntegrityError:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def _apply(
    conn: AsyncConnection,
    changes: Mapping[str, Watched | None],
    batch_size: int,
    now: float,
    new_id: Callable[[], str],
) -> Applied:
    applied = Applied()
    rows = {
        row.event_id: row
        for row in await conn.execute(
            select(
                events.c.event_id,
                events.c.name,
                events.c.link,
                events.c.market,
                events.c.status,
                events.c.batch_id,
                batches.c.interval_s,
                batches.c.partition,
            )
            .select_from(events.outerjoin(batches, events.c.batch_id == batches.c.id))
            .where(events.c.event_id.in_(list(changes)))
        )
    }
    touched: set[str] = set()
    left: set[str] = set()
    for event_id, watch in changes.items():
        row: Any = rows.get(event_id)
        home = None if row is None else row.batch_id
        if watch is None:
            if home is not None:
                await conn.execute(
                    update(events)
                    .where(events.c.event_id == event_id)
                    .values(batch_id=None, read_in_last_poll=False)
                )
                left.add(home)
                applied.removed.append(event_id)
            continue
        status = None if row is None or row.status is None else STATUS_BY_NAME[row.status]
        key = watch.key_for(status)
        if home is not None and BatchKey(row.interval_s, row.partition) == key:
            await _relabel(conn, watch, row)
            continue
        batch_id = await _batch_with_room(conn, key, batch_size, now, new_id)
        if row is None:
            await conn.execute(insert(events).values(**_new_row(watch, batch_id)))
        else:
            await _relabel(conn, watch, row)
            await conn.execute(
                update(events)
                .where(events.c.event_id == event_id)
                .values(batch_id=batch_id, read_in_last_poll=False)
            )
        touched.add(batch_id)
        if home is None:
            # A newly watched event's first reading comes within a tick, not an interval on.
            await conn.execute(
                update(batches)
                .where(batches.c.id == batch_id, batches.c.next_due_at > now)
                .values(next_due_at=now)
            )
            await _details_wanted(conn, event_id, now)
            applied.added.append(event_id)
        else:
            left.add(home)
    if touched or left:
        await conn.execute(
            update(batches)
            .where(batches.c.id.in_(touched | left))
            .values(version=batches.c.version + 1, size=_MEMBERS)
        )
    if left:
        await conn.execute(delete(batches).where(batches.c.id.in_(left), batches.c.size == 0))
    return applied


async def _batch_with_room(
    conn: AsyncConnection, key: BatchKey, batch_size: int, now: float, new_id: Callable[[], str]
) -> str:
    """A batch of `key` with room for one more event, the fullest first (requests stay
    full); a new one, due now, when none has room. Its size counts the event at once, so
    the next event of the same write sees it."""
    batch_id: str | None = await conn.scalar(
        select(batches.c.id)
        .where(
            batches.c.partition == key.partition,
            batches.c.interval_s == key.interval,
            batches.c.size < batch_size,
        )
        .order_by(batches.c.size.desc(), batches.c.id)
        .limit(1)
    )
    if batch_id is None:
        batch_id = new_id()
        await conn.execute(
            insert(batches).values(
                id=batch_id,
                interval_s=key.interval,
                partition=key.partition,
                next_due_at=now,
                version=0,
                failures=0,
                size=1,
            )
        )
    else:
        await conn.execute(
            update(batches).where(batches.c.id == batch_id).values(size=batches.c.size + 1)
        )
    return batch_id


async def _relabel(conn: AsyncConnection, watch: Watched, row: Any) -> None:
    """The name, link and market as the watch now gives them."""
    if (row.name, row.link, row.market) != (watch.name, watch.link, watch.market):
        await conn.execute(
            update(events)
            .where(events.c.event_id == watch.event_id)
            .values(name=watch.name, link=watch.link, market=watch.market)
        )


def _new_row(watch: Watched, batch_id: str) -> dict[str, Any]:
    return {
        "event_id": watch.event_id,
        "name": watch.name,
        "link": watch.link,
        "market": watch.market,
        "batch_id": batch_id,
        "unknown_streak": 0,
        "read_in_last_poll": False,
    }


async def _details_wanted(conn: AsyncConnection, event_id: str, now: float) -> None:
    """A newly watched event gets a details row, due now, if it has none."""
    absent = ~exists().where(event_details.c.event_id == event_id)
    row = select(literal(event_id), false(), literal(now), literal(0)).where(absent)
    await conn.execute(
        insert(event_details).from_select(["event_id", "found", "next_fetch_at", "failures"], row)
    )
