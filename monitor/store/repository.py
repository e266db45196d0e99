"""The watchlist and polling in the database, as set-based SQLAlchemy Core statements.

The poller hands over typed records (`store.records`); only here do they become bind
parameters. Writes on the hot path are one transaction per polled batch; claims use
`FOR UPDATE SKIP LOCKED` on PostgreSQL so replicas sharing a database never poll or
deliver the same thing twice at once (SQLite serialises writers with BEGIN IMMEDIATE).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

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
from monitor.store import regroup
from monitor.store.batching import UNIT, Claimable, assemble
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
from monitor.store.records import BatchKey, ClaimedBatch, PollWrite, Watch
from monitor.store.rows import AVAILABILITY
from monitor.store.tables import (
    UPSTREAM,
    batches,
    changes,
    deliveries,
    events,
    request_sizes,
    snapshots,
    upstream,
)


def saved_quota(limit: int | None, available: int | None, reset_at: float | None) -> Quota:
    """The saved quota figures, less any a garbled answer may have left: counts below zero
    and times that are not finite mean nothing."""

    def count(value: int | None) -> int | None:
        return value if value is not None and value >= 0 else None

    finite = reset_at is not None and math.isfinite(reset_at)
    return Quota(count(limit), count(available), reset_at if finite else None)


def _status(stored: str | None) -> Status | None:
    return None if stored is None else STATUS_BY_NAME[stored]


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
        watches: Iterable[Watch],
        batch_size: int,
        now: float,
        new_id: Callable[[], str],
    ) -> tuple[list[str], list[str]]:
        """Make the watched set equal `watches`; returns the IDs added and those dropped.

        Events are grouped into batches (see `plan_batches`); dropped events keep their rows
        and history, and resume where they stood if they come back.
        """
        async with self.engine.begin() as conn:
            return await regroup.sync_all(conn, watches, batch_size, now, new_id)

    async def rehome(
        self, moves: Mapping[str, BatchKey], batch_size: int, now: float, new_id: Callable[[], str]
    ) -> None:
        """Move events to batches of another key (their interval follows their status)."""
        if moves:
            async with self.engine.begin() as conn:
                await regroup.rehome(conn, moves, batch_size, now, new_id)

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
            rows, read = await _soonest_rows(conn, read, most, now)
            due = [row for row in rows if row.next_due_at <= now]
            self._due_last = len(due)
            riders = _riders(rows, due)
            requests = assemble(_claimables(due), _claimables(riders), capacity, limit)
            taken = await self._take(conn, requests, lease_until)
            soonest = next((row.next_due_at for row in rows if row.id not in taken), None)
            if soonest is None and len(rows) == read:
                soonest = await conn.scalar(SOONEST)
        by_id = {row.id: row for row in rows}
        return Claim([_claimed(request, by_id, now) for request in requests], soonest)

    async def _take(
        self, conn: AsyncConnection, requests: list[list[Claimable]], lease_until: float
    ) -> set[str]:
        """Lease the batches of `requests` to this replica; returns their IDs."""
        taken = {batch.id for request in requests for batch in request}
        if taken:
            parameters = {"b_ids": list(taken), "b_lease_until": lease_until}
            await conn.execute(CLAIM, {**parameters, "b_replica": self.replica})
        return taken

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
            for statement, parameters in _statements(write):
                await conn.execute(statement, parameters)
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
_INSERT_SNAPSHOT = insert(snapshots)
_INSERT_CHANGE = insert(changes)
_INSERT_DELIVERY = insert(deliveries)


class Claim(NamedTuple):
    requests: list[list[ClaimedBatch]]
    next_due: float | None
    """When the first batch not claimed is due (None when there are no batches)."""


# A claim turns each row it read into these on every wake: by position, which a row reads
# several times faster than by name (see `binds.SOONEST_FIRST` for the order).


def _statements(write: PollWrite) -> Iterator[tuple[Executable, list[dict[str, object]]]]:
    """One statement for each kind of row a poll writes, with its rows' parameters."""
    kinds: tuple[tuple[Executable, Sequence[Any], Callable[[Any], dict[str, object]]], ...] = (
        (UPDATE_EVENT, write.updated, updated),
        (UNREAD_EVENT, write.unread, unread),
        (_INSERT_SNAPSHOT, write.snapshots, snapshot),
        (_INSERT_CHANGE, write.changes, change),
        (_INSERT_DELIVERY, write.deliveries, delivery),
        (POLLED, write.polled, polled),
        (POSTPONED, write.postponed, postponed),
    )
    for statement, records, bind in kinds:
        if records:
            yield statement, [bind(record) for record in records]


def _riders(rows: Sequence[Any], due: Sequence[Any]) -> list[Any]:
    """Batches not due that may fill the room due ones leave: of the same partitions, and
    not claimed by a poll in flight, backing off, or of events Ticketmaster does not know.
    `due` is the head of `rows`."""
    partitions = {row.partition for row in due if row.failures == 0}
    return [
        row
        for row in rows[len(due) :]
        if row.claimed_by is None
        and row.failures == 0
        and not row.invalid
        and row.partition in partitions
    ]


def _claimables(rows: Sequence[Any]) -> list[Claimable]:
    return [Claimable(*row[:5]) for row in rows]


def _claimed(
    request: Sequence[Claimable], rows: Mapping[str, Any], now: float
) -> list[ClaimedBatch]:
    claimed = []
    for batch in request:
        batch_id, partition, _, next_due_at, failures, interval, polled_at, version = rows[
            batch.id
        ][:8]
        due = next_due_at <= now
        claimed.append(
            ClaimedBatch(
                batch_id,
                interval,
                polled_at,
                version,
                failures,
                riding_until=None if due else next_due_at,
                due_at=next_due_at if due else None,
                partition=partition,
            )
        )
    return claimed


async def _soonest_rows(
    conn: AsyncConnection, read: int, most: int, now: float
) -> tuple[Sequence[Any], int]:
    """The `read` batches due soonest, or up to `most` when all those are due (a backlog:
    more may be); returns them and how many were asked for."""
    rows = (await conn.execute(SOONEST_FIRST, {"b_most": read})).all()
    if len(rows) == read and rows[-1].next_due_at <= now and read < most:
        rows = (await conn.execute(SOONEST_FIRST, {"b_most": most})).all()
        return rows, most
    return rows, read
