"""Events regrouped into batches in bulk: the full sync of the watchlist (at start, at a
reload, after a flood of writes) and the moves of events whose interval follows their
status. Only the batches involved are touched; every batch whose members moved gets a new
version, so that no cached state of it is trusted after."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, false, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.models import STATUS_BY_NAME
from monitor.store.batching import Batch, BatchPlan, plan_batches
from monitor.store.membership import is_invalid, new_row
from monitor.store.records import BatchKey, Watch
from monitor.store.tables import batches, event_details, events

_MEMBERS = select(func.count()).where(events.c.batch_id == batches.c.id).scalar_subquery()
"""A batch's member count, for its `size`."""
# SQLite allows 32,766 bound parameters per statement; stay well below for IN lists.
_CHUNK = 5000
_KNOWN = select(
    events.c.event_id,
    events.c.name,
    events.c.link,
    events.c.market,
    events.c.batch_id,
    events.c.status,
    events.c.status_detail,
    batches.c.partition,
).select_from(events.outerjoin(batches, events.c.batch_id == batches.c.id))


async def sync_all(
    conn: AsyncConnection,
    watches: Iterable[Watch],
    batch_size: int,
    now: float,
    new_id: Callable[[], str],
) -> tuple[list[str], list[str]]:
    """Make the watched set equal `watches`; returns the IDs added and those dropped."""
    wanted = {watch.event_id: watch for watch in watches}
    known = {row.event_id: row for row in await conn.execute(_KNOWN)}
    current = _batches(await conn.execute(select(batches)), known.values())
    keys = {eid: _key_of(watch, known.get(eid)) for eid, watch in wanted.items()}
    plan = plan_batches(keys, current, batch_size, now, new_id)
    await _create_and_reschedule(conn, plan)
    added = await _place(conn, wanted, known, plan.assign)
    await _details_wanted(conn, now)
    removed = [eid for eid, row in known.items() if row.batch_id is not None and eid not in wanted]
    await _unwatch(conn, removed)
    await _drop(conn, plan)
    # Memberships may have moved: no cached state of any batch is trusted after this.
    await conn.execute(update(batches).values(version=batches.c.version + 1, size=_MEMBERS))
    return added, removed


async def rehome(
    conn: AsyncConnection,
    moves: Mapping[str, BatchKey],
    batch_size: int,
    now: float,
    new_id: Callable[[], str],
) -> None:
    """Move events to batches of another key: only the batches they leave, and those of
    the keys they join, are read and touched."""
    left = select(events.c.batch_id).where(events.c.event_id.in_(list(moves)))
    joined = [
        (batches.c.interval_s == key.interval)
        & (batches.c.partition == key.partition)
        & (batches.c.invalid == key.invalid)
        for key in set(moves.values())
    ]
    involved = select(batches).where(batches.c.id.in_(left.scalar_subquery()) | or_(*joined))
    rows = (await conn.execute(involved)).all()
    member_rows = await conn.execute(
        select(events.c.event_id, events.c.batch_id).where(
            events.c.batch_id.in_([row.id for row in rows])
        )
    )
    current = _batches(rows, member_rows)
    wanted = {eid: batch.key for batch in current.values() for eid in batch.members}
    plan = plan_batches(wanted | dict(moves), current, batch_size, now, new_id)
    await _create_and_reschedule(conn, plan)
    await _move(conn, plan.assign)
    await _drop(conn, plan)
    await conn.execute(
        update(batches)
        .where(batches.c.id.in_([*current, *plan.created]))
        .values(version=batches.c.version + 1, size=_MEMBERS)
    )


async def _place(
    conn: AsyncConnection,
    wanted: Mapping[str, Watch],
    known: Mapping[str, Any],
    assign: Mapping[str, str],
) -> list[str]:
    """New events inserted into their batches, known ones moved and relabelled; returns
    the IDs of the new ones."""
    added = [eid for eid in wanted if eid not in known]
    await _insert(conn, [wanted[eid] for eid in added], assign)
    await _move(conn, {eid: b for eid, b in assign.items() if eid in known})
    await _relabel(conn, [w for eid, w in wanted.items() if eid in known], known)
    return added


async def _drop(conn: AsyncConnection, plan: BatchPlan) -> None:
    if plan.dropped:
        await conn.execute(delete(batches).where(batches.c.id.in_(plan.dropped)))


def _key_of(watch: Watch, row: Any) -> BatchKey:
    """The batch key of a watched event as its row stands (None: a new event)."""
    if row is None:
        return watch.key_for(None)
    status = None if row.status is None else STATUS_BY_NAME[row.status]
    return watch.key_for(status, invalid=is_invalid(row, watch))


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _batches(rows: Iterable[Any], members: Iterable[Any]) -> dict[str, Batch]:
    """Batches from rows of the batches table, with their members from event rows."""
    by_batch: dict[str, set[str]] = {}
    for row in members:
        if row.batch_id is not None:
            by_batch.setdefault(row.batch_id, set()).add(row.event_id)
    return {
        row.id: Batch(
            row.id,
            BatchKey(row.interval_s, row.partition, row.invalid),
            row.next_due_at,
            frozenset(by_batch.get(row.id, ())),
        )
        for row in rows
    }


async def _create_and_reschedule(conn: AsyncConnection, plan: BatchPlan) -> None:
    if plan.created:
        await conn.execute(
            insert(batches),
            [
                {
                    "id": batch_id,
                    "interval_s": key.interval,
                    "partition": key.partition,
                    "invalid": key.invalid,
                    "next_due_at": due_at,
                    "version": 0,
                    "failures": 0,
                }
                for batch_id, (key, due_at) in plan.created.items()
            ],
        )
    if plan.rescheduled:
        await conn.execute(
            update(batches)
            .where(batches.c.id == bindparam("b_id"))
            .values(next_due_at=bindparam("b_due")),
            [{"b_id": bid, "b_due": due} for bid, due in plan.rescheduled.items()],
        )


async def _insert(conn: AsyncConnection, added: Sequence[Watch], assign: Mapping[str, str]) -> None:
    # In chunks: the rows of a 100,000-event watchlist need not exist all at once.
    for start in range(0, len(added), _CHUNK):
        await conn.execute(
            insert(events),
            [new_row(watch, assign[watch.event_id]) for watch in added[start : start + _CHUNK]],
        )


async def _relabel(
    conn: AsyncConnection, watches: Sequence[Watch], known: Mapping[str, Any]
) -> None:
    """Names, links and markets as the configuration now gives them."""
    changed = [
        {"b_event_id": w.event_id, "b_name": w.name, "b_link": w.link, "b_market": w.market}
        for w in watches
        if (known[w.event_id].name, known[w.event_id].link, known[w.event_id].market)
        != (w.name, w.link, w.market)
    ]
    if changed:
        await conn.execute(
            update(events)
            .where(events.c.event_id == bindparam("b_event_id"))
            .values(
                name=bindparam("b_name"), link=bindparam("b_link"), market=bindparam("b_market")
            ),
            changed,
        )


async def _details_wanted(conn: AsyncConnection, now: float) -> None:
    """Every watched event gets a details row, due now when new: the Discovery refresh
    claims those rows."""
    lacking = (
        select(events.c.event_id, false(), literal(now), literal(0))
        .select_from(events.outerjoin(event_details, event_details.c.event_id == events.c.event_id))
        .where(events.c.batch_id.is_not(None), event_details.c.event_id.is_(None))
    )
    await conn.execute(
        insert(event_details).from_select(
            ["event_id", "found", "next_fetch_at", "failures"], lacking
        )
    )


async def _unwatch(conn: AsyncConnection, removed: Sequence[str]) -> None:
    """Events no longer watched keep their rows and history, outside any batch."""
    for chunk in _chunks(removed):
        await conn.execute(
            update(events)
            .where(events.c.event_id.in_(chunk))
            .values(batch_id=None, read_in_last_poll=False)
        )


async def _move(conn: AsyncConnection, assign: Mapping[str, str]) -> None:
    """Put known events into other batches; their last-seen time becomes their own."""
    if assign:
        await conn.execute(
            update(events)
            .where(events.c.event_id == bindparam("b_event_id"))
            .values(batch_id=bindparam("b_batch"), read_in_last_poll=False),
            [{"b_event_id": eid, "b_batch": bid} for eid, bid in assign.items()],
        )
