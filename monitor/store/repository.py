"""The watchlist and polling in the database, as set-based SQLAlchemy Core statements.

The poller hands over typed records (`store.records`); only here do they become bind
parameters. Writes on the hot path are one transaction per polled batch; claims use
`FOR UPDATE SKIP LOCKED` on PostgreSQL so replicas sharing a database never poll or
deliver the same thing twice at once (SQLite serialises writers with BEGIN IMMEDIATE).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, false, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.models import (
    INVALID_EVENT_ID,
    NO_DETAIL,
    STATUS_BY_NAME,
    Availability,
    EventState,
    Health,
    Quota,
    ResaleStatus,
    Status,
    StatusDetail,
    UpstreamStatus,
)
from monitor.store.batching import UNIT, Batch, BatchPlan, Claimable, assemble, plan_batches
from monitor.store.binds import (
    CLAIM,
    POLLED,
    POSTPONED,
    SOONEST_FIRST,
    UNREAD_EVENT,
    UPDATE_EVENT,
    change,
    delivery,
    polled,
    postponed,
    snapshot,
    unread,
    updated,
)
from monitor.store.engine import reader
from monitor.store.membership import is_invalid, new_row
from monitor.store.records import BatchKey, ClaimedBatch, PollWrite, Watched
from monitor.store.rows import AVAILABILITY
from monitor.store.tables import (
    UPSTREAM,
    batches,
    changes,
    deliveries,
    event_details,
    events,
    request_sizes,
    snapshots,
    upstream,
)

_MEMBERS = select(func.count()).where(events.c.batch_id == batches.c.id).scalar_subquery()
"""A batch's member count, for its `size`."""
# SQLite allows 32,766 bound parameters per statement; stay well below for IN lists.
_CHUNK = 5000


def saved_quota(limit: int | None, available: int | None, reset_at: float | None) -> Quota:
    """The saved quota figures, less any a garbled answer may have left: counts below zero
    and times that are not finite mean nothing."""

    def count(value: int | None) -> int | None:
        return value if value is not None and value >= 0 else None

    finite = reset_at is not None and math.isfinite(reset_at)
    return Quota(count(limit), count(available), reset_at if finite else None)


def _status(stored: str | None) -> Status | None:
    return None if stored is None else STATUS_BY_NAME[stored]


def _key_of(watch: Watched, row: Any) -> BatchKey:
    """The batch key of a watched event as its row stands (None: a new event)."""
    if row is None:
        return watch.key_for(None)
    return watch.key_for(_status(row.status), invalid=is_invalid(row, watch))


def _detail(
    current: Availability | None, status: str | None, resale: str | None
) -> StatusDetail | None:
    """The details a state keeps (see `detect.detail_kept`); an accepted UNKNOWN stored
    without any keeps "none given", so that a detail given later is noticed."""
    if status is not None or resale is not None:
        return StatusDetail(status, resale)
    if current is None or (
        current.status is not Status.UNKNOWN and current.resale_status is not ResaleStatus.UNKNOWN
    ):
        return None
    return NO_DETAIL


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class Repository:
    def __init__(self, engine: AsyncEngine, replica: str | None = None) -> None:
        self.engine = engine
        self.replica = replica
        """Who claims batches through this repository (see `store.replicas`)."""
        self._reader = reader(engine)
        self._due_last = 0
        """How many due batches the last claim found: the next reads that many, and more, in
        its first statement, so that a steady stream of claims needs no second read."""

    # -- watchlist -----------------------------------------------------------------------

    async def sync_watchlist(
        self,
        watches: Iterable[Watched],
        batch_size: int,
        now: float,
        new_id: Callable[[], str],
    ) -> tuple[list[str], list[str]]:
        """Make the watched set equal `watches`; returns the IDs added and those dropped.

        Events are grouped into batches (see `plan_batches`); dropped events keep their rows
        and history, and resume where they stood if they come back.
        """
        wanted = {watch.event_id: watch for watch in watches}
        async with self.engine.begin() as conn:
            known = {
                row.event_id: row
                for row in await conn.execute(
                    select(
                        events.c.event_id,
                        events.c.name,
                        events.c.link,
                        events.c.market,
                        events.c.batch_id,
                        events.c.status,
                        events.c.status_detail,
                        batches.c.partition,
                    ).select_from(events.outerjoin(batches, events.c.batch_id == batches.c.id))
                )
            }
            current = _batches(await conn.execute(select(batches)), known.values())
            keys = {eid: _key_of(watch, known.get(eid)) for eid, watch in wanted.items()}
            plan = plan_batches(keys, current, batch_size, now, new_id)
            await _create_and_reschedule(conn, plan)
            added = [eid for eid in wanted if eid not in known]
            await _insert(conn, [wanted[eid] for eid in added], plan.assign)
            await _move(conn, {eid: b for eid, b in plan.assign.items() if eid in known})
            await _relabel(conn, [w for eid, w in wanted.items() if eid in known], known)
            await _details_wanted(conn, now)
            removed = [
                eid for eid, row in known.items() if row.batch_id is not None and eid not in wanted
            ]
            await _unwatch(conn, removed)
            if plan.dropped:
                await conn.execute(delete(batches).where(batches.c.id.in_(plan.dropped)))
            # Memberships may have moved: no cached state of any batch is trusted after this.
            await conn.execute(update(batches).values(version=batches.c.version + 1, size=_MEMBERS))
        return added, removed

    async def rehome(
        self, moves: Mapping[str, BatchKey], batch_size: int, now: float, new_id: Callable[[], str]
    ) -> None:
        """Move events to batches of another key (their interval follows their status).

        Only the batches involved are read and touched: those the events leave, and those
        of the keys they join.
        """
        if not moves:
            return
        async with self.engine.begin() as conn:
            left = select(events.c.batch_id).where(events.c.event_id.in_(list(moves)))
            joined = [
                (batches.c.interval_s == key.interval)
                & (batches.c.partition == key.partition)
                & (batches.c.invalid == key.invalid)
                for key in set(moves.values())
            ]
            involved = select(batches).where(
                batches.c.id.in_(left.scalar_subquery()) | or_(*joined)
            )
            rows = (await conn.execute(involved)).all()
            member_rows = await conn.execute(
                select(events.c.event_id, events.c.batch_id).where(
                    events.c.batch_id.in_([row.id for row in rows])
                )
            )
            current = _batches(rows, member_rows)
            wanted = {eid: batch.key for batch in current.values() for eid in batch.members} | dict(
                moves
            )
            plan = plan_batches(wanted, current, batch_size, now, new_id)
            await _create_and_reschedule(conn, plan)
            await _move(conn, plan.assign)
            if plan.dropped:
                await conn.execute(delete(batches).where(batches.c.id.in_(plan.dropped)))
            await conn.execute(
                update(batches)
                .where(batches.c.id.in_([*current, *plan.created]))
                .values(version=batches.c.version + 1, size=_MEMBERS)
            )

    # -- polling -------------------------------------------------------------------------

    async def claim_due(self, now: float, limit: int, lease_until: float, capacity: int) -> Claim:
        """Take up to `limit` requests' worth of batches (see `assemble`): the due ones,
        and others of their partitions that fit in the room left, pushing the due time of
        each to `lease_until`. Should this process die mid-poll, they come due again when
        the lease ends. The same read says when the next batch is due after the claim, so
        that a poller needs no other read to know when to wake.
        """
        per_request = capacity // UNIT + 1
        most = limit * per_request
        read = min(most, max(2 * per_request, self._due_last + per_request))
        async with self.engine.begin() as conn:
            rows = (await conn.execute(SOONEST_FIRST, {"b_most": read})).all()
            if len(rows) == read and rows[-1].next_due_at <= now and read < most:
                # A backlog: all that was read is due, and more may be.
                read = most
                rows = (await conn.execute(SOONEST_FIRST, {"b_most": read})).all()
            due = [row for row in rows if row.next_due_at <= now]
            self._due_last = len(due)
            # Riders fill the room due batches leave; batches claimed by a poll in flight,
            # backing off, or of events Ticketmaster does not know, do not ride.
            partitions = {row.partition for row in due if row.failures == 0}
            waiting = [
                row
                for row in rows[len(due) :]
                if row.claimed_by is None
                and row.failures == 0
                and not row.invalid
                and row.partition in partitions
            ]
            requests = assemble(
                [_claimable(row) for row in due],
                [_claimable(row) for row in waiting],
                capacity,
                limit,
            )
            taken = {batch.id for request in requests for batch in request}
            if taken:
                parameters = {"b_ids": list(taken), "b_lease_until": lease_until}
                await conn.execute(CLAIM, {**parameters, "b_replica": self.replica})
            rest = (row.next_due_at for row in rows if row.id not in taken)
            soonest = next(rest, None)
            if soonest is None and len(rows) == read:
                soonest = await conn.scalar(SOONEST)
        by_id = {row.id: row for row in rows}
        return Claim(
            [[_claimed(by_id[batch.id], now) for batch in request] for request in requests],
            soonest,
        )

    async def next_due_at(self) -> float | None:
        async with self._reader.connect() as conn:
            due: float | None = await conn.scalar(SOONEST)
        return due

    async def standings(self, event_ids: Sequence[str]) -> dict[str, tuple[Status | None, bool]]:
        """Each event's accepted status (None before its first reading), and whether
        Ticketmaster last said it does not know it: what its batch's key depends on."""
        query = select(events.c.event_id, events.c.status, events.c.status_detail).where(
            events.c.event_id.in_(list(event_ids))
        )
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {
            event_id: (_status(status), detail == INVALID_EVENT_ID)
            for event_id, status, detail in rows
        }

    async def load_states(self, batch_ids: Sequence[str]) -> dict[str, dict[str, EventState]]:
        """The states of the member events of `batch_ids`, by batch and event ID."""
        query = select(
            events.c.batch_id,
            events.c.event_id,
            events.c.status,
            events.c.resale_status,
            events.c.unknown_streak,
            events.c.last_snapshot_at,
            events.c.read_in_last_poll,
            events.c.status_detail,
            events.c.resale_status_detail,
        ).where(events.c.batch_id.in_(batch_ids))
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        states: dict[str, dict[str, EventState]] = {batch_id: {} for batch_id in batch_ids}
        shared: dict[EventState, EventState] = {}
        for batch_id, event_id, status, resale, streak, snapshot_at, read, *why in rows:
            current = None if status is None else AVAILABILITY[status, resale]
            state = EventState(current, streak, snapshot_at, read, _detail(current, *why))
            states[batch_id][event_id] = shared.setdefault(state, state)
        return states

    async def save_poll(self, write: PollWrite) -> None:
        async with self.engine.begin() as conn:
            if write.updated:
                await conn.execute(UPDATE_EVENT, [updated(u) for u in write.updated])
            if write.unread:
                await conn.execute(UNREAD_EVENT, [unread(u) for u in write.unread])
            if write.snapshots:
                await conn.execute(insert(snapshots), [snapshot(s) for s in write.snapshots])
            if write.changes:
                await conn.execute(insert(changes), [change(c) for c in write.changes])
            if write.deliveries:
                await conn.execute(insert(deliveries), [delivery(d) for d in write.deliveries])
            if write.polled:
                await conn.execute(POLLED, [polled(b) for b in write.polled])
            if write.postponed:
                await conn.execute(POSTPONED, [postponed(b) for b in write.postponed])
            if write.upstream is not None:
                await self._save_upstream(conn, write.upstream)

    async def expedite(self, now: float, lease: float) -> None:
        """Bring batches backing off past their schedule due now: the upstream works again.

        A batch leased by a poll in flight (due within `lease`) is left alone.
        """
        async with self.engine.begin() as conn:
            await conn.execute(
                update(batches)
                .where(
                    batches.c.next_due_at > now + lease,
                    batches.c.next_due_at > now + batches.c.interval_s,
                )
                .values(next_due_at=now)
            )

    # -- upstream ------------------------------------------------------------------------

    async def load_request_size(self, endpoint: str) -> int | None:
        """The request size learnt for `endpoint`, if one was."""
        async with self._reader.connect() as conn:
            return (
                await conn.execute(
                    select(request_sizes.c.size).where(request_sizes.c.endpoint == endpoint)
                )
            ).scalar()

    async def save_request_size(self, endpoint: str, size: int, now: float) -> None:
        async with self.engine.begin() as conn:
            saved = await conn.execute(
                update(request_sizes)
                .where(request_sizes.c.endpoint == endpoint)
                .values(size=size, learnt_at=now)
            )
            if not saved.rowcount:
                await conn.execute(
                    insert(request_sizes).values(endpoint=endpoint, size=size, learnt_at=now)
                )

    async def save_upstream(self, status: UpstreamStatus) -> None:
        async with self.engine.begin() as conn:
            await self._save_upstream(conn, status)

    @staticmethod
    async def _save_upstream(conn: AsyncConnection, status: UpstreamStatus) -> None:
        quota = status.quota
        await conn.execute(
            update(upstream)
            .where(upstream.c.name == UPSTREAM)
            .values(
                health=status.health.value,
                since=status.since,
                paused_until=status.paused_until,
                last_error=status.last_error,
                last_success_at=status.last_success_at,
                quota_limit=quota.limit,
                quota_available=quota.available,
                quota_reset_at=quota.reset_at,
            )
        )

    async def load_upstream(self) -> UpstreamStatus:
        async with self._reader.connect() as conn:
            row = (await conn.execute(select(upstream).where(upstream.c.name == UPSTREAM))).first()
        if row is None:
            return UpstreamStatus()
        return UpstreamStatus(
            health=Health(row.health),
            since=row.since,
            paused_until=row.paused_until,
            last_error=row.last_error,
            last_success_at=row.last_success_at,
            quota=saved_quota(row.quota_limit, row.quota_available, row.quota_reset_at),
        )


SOONEST = select(func.min(batches.c.next_due_at))


class Claim(NamedTuple):
    requests: list[list[ClaimedBatch]]
    next_due: float | None
    """When the first batch not claimed is due (None when there are no batches)."""


# A claim turns each row it read into these on every wake: by position, which a row reads
# several times faster than by name (see `binds.SOONEST_FIRST` for the order).


def _claimable(row: Any) -> Claimable:
    batch_id, partition, size, next_due_at, failures = row[:5]
    return Claimable(batch_id, partition, size, next_due_at, failures)


def _claimed(row: Any, now: float) -> ClaimedBatch:
    batch_id, partition, _, next_due_at, failures, interval, last_polled_at, version = row[:8]
    due = next_due_at <= now
    return ClaimedBatch(
        batch_id,
        interval,
        last_polled_at,
        version,
        failures,
        riding_until=None if due else next_due_at,
        due_at=next_due_at if due else None,
        partition=partition,
    )


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


async def _insert(
    conn: AsyncConnection, added: Sequence[Watched], assign: Mapping[str, str]
) -> None:
    # In chunks: the rows of a 100,000-event watchlist need not exist all at once.
    for start in range(0, len(added), _CHUNK):
        await conn.execute(
            insert(events),
            [new_row(watch, assign[watch.event_id]) for watch in added[start : start + _CHUNK]],
        )


async def _relabel(
    conn: AsyncConnection, watches: Sequence[Watched], known: Mapping[str, Any]
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
