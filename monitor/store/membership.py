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

from sqlalchemy import (
    Float,
    String,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.models import INVALID_EVENT_ID, STATUS_BY_NAME
from monitor.store.records import BatchKey, Watch
from monitor.store.tables import batches, event_details, events

_MEMBERS = select(func.count()).where(events.c.batch_id == batches.c.id).scalar_subquery()
ATTEMPTS = 3
"""Tries when another writer applies the same change at the same moment (PostgreSQL)."""

# Built once: a write applies a handful of these, and building them each time (and their
# cache keys) would cost more than running them.
_KNOWN = (
    select(
        events.c.event_id,
        events.c.name,
        events.c.link,
        events.c.market,
        events.c.status,
        events.c.status_detail,
        events.c.batch_id,
        batches.c.interval_s,
        batches.c.partition,
        batches.c.invalid,
    )
    .select_from(events.outerjoin(batches, events.c.batch_id == batches.c.id))
    .where(events.c.event_id.in_(bindparam("b_ids", expanding=True)))
)
_HOME = (
    update(events)
    .where(events.c.event_id == bindparam("b_event_id"))
    .values(batch_id=bindparam("b_batch"), read_in_last_poll=False)
)
_WITH_ROOM = (
    select(batches.c.id)
    .where(
        batches.c.partition == bindparam("b_partition"),
        batches.c.interval_s == bindparam("b_interval"),
        batches.c.invalid == bindparam("b_invalid"),
        batches.c.size < bindparam("b_size"),
    )
    .order_by(batches.c.size.desc(), batches.c.id)
    .limit(1)
)
_INSERT_EVENT = insert(events)
_GROWN = update(batches).where(batches.c.id == bindparam("b_id")).values(size=batches.c.size + 1)
_DUE_NOW = (
    update(batches)
    .where(batches.c.id == bindparam("b_id"), batches.c.next_due_at > bindparam("b_now"))
    .values(next_due_at=bindparam("b_now"))
)
_DETAILS_WANTED = insert(event_details).from_select(
    ["event_id", "found", "next_fetch_at", "failures"],
    select(
        bindparam("b_event_id", type_=String), false(), bindparam("b_now", type_=Float), literal(0)
    ).where(~exists().where(event_details.c.event_id == bindparam("b_event_id"))),
)
_RECOUNTED = (
    update(batches)
    .where(batches.c.id.in_(bindparam("b_ids", expanding=True)))
    .values(version=batches.c.version + 1, size=_MEMBERS)
)
_EMPTY_GONE = delete(batches).where(
    batches.c.id.in_(bindparam("b_ids", expanding=True)), batches.c.size == 0
)


@dataclass(slots=True)
class Applied:
    """What a set of watch changes did to the watched set."""

    added: list[str] = field(default_factory=list)
    """Newly watched (not watched before)."""
    removed: list[str] = field(default_factory=list)
    """No longer watched."""


async def apply_watches(
    engine: AsyncEngine,
    changes: Mapping[str, Watch | None],
    batch_size: int,
    now: float,
    new_id: Callable[[], str],
) -> Applied:
    """Make each event of `changes` watched as its value says, or (None) not watched."""
    attempt = 1
    while True:
        try:
            async with engine.begin() as conn:
                return await _apply(conn, changes, batch_size, now, new_id)
        except IntegrityError:
            if attempt == ATTEMPTS:
                raise
            attempt += 1


async def _apply(
    conn: AsyncConnection,
    changes: Mapping[str, Watch | None],
    batch_size: int,
    now: float,
    new_id: Callable[[], str],
) -> Applied:
    applied = Applied()
    rows = {row.event_id: row for row in await conn.execute(_KNOWN, {"b_ids": list(changes)})}
    touched: set[str] = set()
    left: set[str] = set()
    for event_id, watch in changes.items():
        row: Any = rows.get(event_id)
        home = None if row is None else row.batch_id
        if watch is None:
            if home is not None:
                await conn.execute(_HOME, {"b_event_id": event_id, "b_batch": None})
                left.add(home)
                applied.removed.append(event_id)
            continue
        batch_id = await _rehomed(conn, watch, row, batch_size, now, new_id)
        if batch_id is None:
            continue
        touched.add(batch_id)
        if home is None:
            # A newly watched event's first reading comes within a tick, not an interval on.
            await conn.execute(_DUE_NOW, {"b_id": batch_id, "b_now": now})
            await conn.execute(_DETAILS_WANTED, {"b_event_id": event_id, "b_now": now})
            applied.added.append(event_id)
        else:
            left.add(home)
    if touched or left:
        await conn.execute(_RECOUNTED, {"b_ids": list(touched | left)})
    if left:
        await conn.execute(_EMPTY_GONE, {"b_ids": list(left)})
    return applied


async def _rehomed(  # noqa: PLR0917 - one event's part of a write
    conn: AsyncConnection,
    watch: Watch,
    row: Any,
    batch_size: int,
    now: float,
    new_id: Callable[[], str],
) -> str | None:
    """The batch the event of `watch` (stored as `row`, None when new) now joins; None
    when it stays in its own, whose key still fits it."""
    status = None if row is None or row.status is None else STATUS_BY_NAME[row.status]
    key = watch.key_for(status, invalid=row is not None and is_invalid(row, watch))
    if row is None:
        batch_id = await _batch_with_room(conn, key, batch_size, now, new_id)
        await conn.execute(_INSERT_EVENT, [new_row(watch, batch_id)])
        return batch_id
    await _relabel(conn, watch, row)
    if row.batch_id is not None and BatchKey(row.interval_s, row.partition, row.invalid) == key:
        return None
    batch_id = await _batch_with_room(conn, key, batch_size, now, new_id)
    await conn.execute(_HOME, {"b_event_id": watch.event_id, "b_batch": batch_id})
    return batch_id


async def _batch_with_room(
    conn: AsyncConnection, key: BatchKey, batch_size: int, now: float, new_id: Callable[[], str]
) -> str:
    """A batch of `key` with room for one more event, the fullest first (requests stay
    full); a new one, due now, when none has room. Its size counts the event at once, so
    the next event of the same write sees it."""
    batch_id: str | None = await conn.scalar(
        _WITH_ROOM,
        {
            "b_partition": key.partition,
            "b_interval": key.interval,
            "b_invalid": key.invalid,
            "b_size": batch_size,
        },
    )
    if batch_id is None:
        batch_id = new_id()
        await conn.execute(
            insert(batches).values(
                id=batch_id,
                interval_s=key.interval,
                partition=key.partition,
                invalid=key.invalid,
                next_due_at=now,
                version=0,
                failures=0,
                size=1,
            )
        )
    else:
        await conn.execute(_GROWN, {"b_id": batch_id})
    return batch_id


async def _relabel(conn: AsyncConnection, watch: Watch, row: Any) -> None:
    """The name, link and market as the watch now gives them."""
    if (row.name, row.link, row.market) != (watch.name, watch.link, watch.market):
        await conn.execute(
            update(events)
            .where(events.c.event_id == watch.event_id)
            .values(name=watch.name, link=watch.link, market=watch.market)
        )


def is_invalid(row: Any, watch: Watch) -> bool:
    """Whether Ticketmaster's last answer for an event's stored `row` (with its batch's
    partition) said it does not know the event, asked as `watch` asks: a new region is
    a new question, answered at the event's own interval."""
    return bool(row.status_detail == INVALID_EVENT_ID and row.partition == watch.partition)


def new_row(watch: Watch, batch_id: str) -> dict[str, Any]:
    """A newly watched event's row, in `batch_id`, never read yet."""
    return {
        "event_id": watch.event_id,
        "name": watch.name,
        "link": watch.link,
        "market": watch.market,
        "batch_id": batch_id,
        "unknown_streak": 0,
        "read_in_last_poll": False,
    }
