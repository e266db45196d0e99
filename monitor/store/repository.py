"""Every database operation the monitor performs, as set-based SQLAlchemy Core statements.

Writes on the hot path are one transaction per polled batch; claims use
`FOR UPDATE SKIP LOCKED` on PostgreSQL so replicas sharing a database never poll or
deliver the same thing twice at once (SQLite serialises writers with BEGIN IMMEDIATE).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, insert, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.models import (
    RESALE_BY_NAME,
    STATUS_BY_NAME,
    Availability,
    Change,
    Delivery,
    EventState,
)
from monitor.store.tables import changes, deliveries, delivery_attempts, events, snapshots

# SQLite allows 32,766 bound parameters per statement; stay well below for IN lists.
_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class WatchEntry:
    event_id: str
    name: str | None
    interval: float


@dataclass(slots=True)
class PollWrite:
    """Everything some polled batches change, written in one transaction."""

    updated: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    unread: dict[float, list[str]] = field(default_factory=dict)
    """Events without a reading (failed request, left out of the answer) by next due time."""
    settled: list[tuple[str, float]] = field(default_factory=list)
    """Claims (token, poll time) whose remaining events were read unchanged."""

    def merge(self, other: PollWrite) -> None:
        for due_at, event_ids in other.unread.items():
            self.unread.setdefault(due_at, []).extend(event_ids)
        self.updated.extend(other.updated)
        self.snapshots.extend(other.snapshots)
        self.changes.extend(other.changes)
        self.deliveries.extend(other.deliveries)
        self.settled.extend(other.settled)


@dataclass(frozen=True, slots=True)
class EventRow:
    event_id: str
    name: str | None
    watched: bool
    current: Availability | None
    first_seen_at: float | None
    last_seen_at: float | None
    last_changed_at: float | None
    next_due_at: float


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: str
    change_id: str
    event_id: str
    notifier: str
    state: str
    attempts: int
    created_at: float
    next_attempt_at: float
    finished_at: float | None
    last_error: str | None


_UPDATE_EVENT = (
    update(events)
    .where(events.c.event_id == bindparam("b_event_id"))
    .values(
        status=bindparam("b_status"),
        resale_status=bindparam("b_resale_status"),
        unknown_streak=bindparam("b_unknown_streak"),
        first_seen_at=func.coalesce(events.c.first_seen_at, bindparam("b_seen_at")),
        last_seen_at=bindparam("b_seen_at"),
        last_changed_at=func.coalesce(bindparam("b_changed_at"), events.c.last_changed_at),
        last_snapshot_at=func.coalesce(bindparam("b_snapshot_at"), events.c.last_snapshot_at),
        next_due_at=bindparam("b_due_at"),
        claim_token=None,
    )
)


def _availability(status: str | None, resale: str | None) -> Availability | None:
    if status is None or resale is None:
        return None
    return Availability(STATUS_BY_NAME[status], RESALE_BY_NAME[resale])


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class Repository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # -- watchlist -----------------------------------------------------------------------

    async def sync_watchlist(
        self,
        entries: Sequence[WatchEntry],
        schedule: Callable[[Sequence[str], float], dict[str, float]],
        now: float,
    ) -> tuple[list[str], list[str]]:
        """Make the watched set equal `entries`; returns the IDs added and those dropped.

        New, returning and overdue events get due times from `schedule`, so a start after
        downtime does not fire every event at once. Dropped events keep their rows and
        history, and resume where they stood if they come back.
        """
        wanted = {entry.event_id: entry for entry in entries}
        async with self.engine.begin() as conn:
            query = select(
                events.c.event_id,
                events.c.name,
                events.c.watched,
                events.c.next_due_at,
                events.c.interval_s,
            )
            known = {row.event_id: row for row in (await conn.execute(query)).all()}
            added = [eid for eid in wanted if eid not in known]
            rescheduled = [
                eid
                for eid in wanted
                if eid in known and (not known[eid].watched or known[eid].next_due_at < now)
            ]
            due = schedule([*added, *rescheduled], now)
            if added:
                await conn.execute(
                    insert(events),
                    [
                        {
                            "event_id": eid,
                            "name": wanted[eid].name,
                            "interval_s": wanted[eid].interval,
                            "watched": True,
                            "unknown_streak": 0,
                            "next_due_at": due[eid],
                        }
                        for eid in added
                    ],
                )
            revised = [
                {
                    "b_event_id": eid,
                    "b_name": entry.name,
                    "b_interval": entry.interval,
                    "b_due": due.get(eid),
                }
                for eid, entry in wanted.items()
                if eid in known
                and (
                    eid in due
                    or known[eid].name != entry.name
                    or known[eid].interval_s != entry.interval
                )
            ]
            if revised:
                await conn.execute(
                    update(events)
                    .where(events.c.event_id == bindparam("b_event_id"))
                    .values(
                        name=bindparam("b_name"),
                        interval_s=bindparam("b_interval"),
                        watched=True,
                        next_due_at=func.coalesce(bindparam("b_due"), events.c.next_due_at),
                    ),
                    revised,
                )
            removed = [eid for eid, row in known.items() if row.watched and eid not in wanted]
            for chunk in _chunks(removed):
                await conn.execute(
                    update(events).where(events.c.event_id.in_(chunk)).values(watched=False)
                )
        return added, removed

    async def set_due(self, due: dict[float, list[str]]) -> None:
        async with self.engine.begin() as conn:
            await _set_due(conn, due)

    # -- polling -------------------------------------------------------------------------

    async def claim_due(
        self, now: float, limit: int, lease_until: float, token: str
    ) -> list[EventState]:
        """Take up to `limit` due events under `token`, pushing their due time to `lease_until`.

        Should this process die mid-poll, the events come due again when the lease ends.
        The token lets `save_poll` settle every unchanged event of the claim in one statement.
        """
        due = (
            select(events.c.event_id)
            # `watched = true`, not bare `watched`: SQLite uses ix_events_due only for the former.
            .where(events.c.watched == true(), events.c.next_due_at <= now)
            .order_by(events.c.next_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(events)
            .where(events.c.event_id.in_(due.scalar_subquery()))
            .values(next_due_at=lease_until, claim_token=token)
            .returning(
                events.c.event_id,
                events.c.status,
                events.c.resale_status,
                events.c.unknown_streak,
                events.c.last_snapshot_at,
            )
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(claim)).all()
        return [
            EventState(
                event_id,
                None
                if status is None
                else Availability(STATUS_BY_NAME[status], RESALE_BY_NAME[resale]),
                streak,
                snapshot_at,
            )
            for event_id, status, resale, streak, snapshot_at in rows
        ]

    async def save_poll(self, write: PollWrite) -> None:
        async with self.engine.begin() as conn:
            await _set_due(conn, write.unread)
            if write.updated:
                await conn.execute(_UPDATE_EVENT, write.updated)
            if write.snapshots:
                await conn.execute(insert(snapshots), write.snapshots)
            if write.changes:
                await conn.execute(insert(changes), write.changes)
            if write.deliveries:
                await conn.execute(insert(deliveries), write.deliveries)
            for token, seen_at in write.settled:
                await conn.execute(
                    update(events)
                    .where(events.c.claim_token == token)
                    .values(
                        last_seen_at=seen_at,
                        next_due_at=seen_at + events.c.interval_s,
                        claim_token=None,
                    )
                )

    # -- delivery outbox -----------------------------------------------------------------

    async def claim_deliveries(
        self, notifier: str, now: float, limit: int, lease_until: float
    ) -> list[Delivery]:
        """Take up to `limit` pending deliveries for `notifier` that are due at `now`."""
        due = (
            select(deliveries.c.id)
            .where(
                deliveries.c.state == "pending",
                deliveries.c.notifier == notifier,
                deliveries.c.next_attempt_at <= now,
            )
            .order_by(deliveries.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(deliveries)
            .where(deliveries.c.id.in_(due.scalar_subquery()))
            .values(next_attempt_at=lease_until)
            .returning(deliveries.c.id, deliveries.c.change_id, deliveries.c.attempts)
        )
        async with self.engine.begin() as conn:
            claimed = (await conn.execute(claim)).all()
            if not claimed:
                return []
            found = await _changes_by_id(conn, [row.change_id for row in claimed])
        return [
            Delivery(row.id, notifier, found[row.change_id], row.attempts + 1) for row in claimed
        ]

    async def record_attempt(
        self,
        delivery_id: str,
        *,
        attempted_at: float,
        outcome: str,
        status_code: int | None,
        error: str | None,
        next_attempt_at: float | None,
    ) -> None:
        """Log one attempt; `outcome` is delivered, failed (retry at next_attempt_at) or dead."""
        state = {"delivered": "delivered", "dead": "dead"}.get(outcome, "pending")
        values: dict[str, Any] = {
            "attempts": deliveries.c.attempts + 1,
            "state": state,
            "last_error": error,
        }
        if state == "pending":
            values["next_attempt_at"] = next_attempt_at
        else:
            values["finished_at"] = attempted_at
        async with self.engine.begin() as conn:
            await conn.execute(
                update(deliveries).where(deliveries.c.id == delivery_id).values(values)
            )
            await conn.execute(
                insert(delivery_attempts).values(
                    delivery_id=delivery_id,
                    attempted_at=attempted_at,
                    outcome=outcome,
                    status_code=status_code,
                    error=error,
                )
            )

    async def list_deliveries(
        self, *, dead_only: bool = False, limit: int = 50
    ) -> list[DeliveryRow]:
        query = (
            select(deliveries, changes.c.event_id)
            .join(changes, changes.c.id == deliveries.c.change_id)
            .order_by(deliveries.c.created_at.desc())
            .limit(limit)
        )
        if dead_only:
            query = query.where(deliveries.c.state == "dead")
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            DeliveryRow(
                r.id,
                r.change_id,
                r.event_id,
                r.notifier,
                r.state,
                r.attempts,
                r.created_at,
                r.next_attempt_at,
                r.finished_at,
                r.last_error,
            )
            for r in rows
        ]

    # -- reading -------------------------------------------------------------------------

    async def event_rows(self, *, watched_only: bool = True) -> list[EventRow]:
        query = select(events).order_by(events.c.name, events.c.event_id)
        if watched_only:
            query = query.where(events.c.watched)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_event_row(row) for row in rows]

    async def event_row(self, event_id: str) -> EventRow | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(events).where(events.c.event_id == event_id))).first()
        return None if row is None else _event_row(row)

    async def snapshots_of(
        self, event_id: str, limit: int = 1000
    ) -> list[tuple[float, Availability]]:
        query = (
            select(snapshots.c.observed_at, snapshots.c.status, snapshots.c.resale_status)
            .where(snapshots.c.event_id == event_id)
            .order_by(snapshots.c.observed_at.desc(), snapshots.c.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            (at, Availability(STATUS_BY_NAME[s], RESALE_BY_NAME[r])) for at, s, r in reversed(rows)
        ]

    async def changes_of(self, event_id: str | None = None, limit: int = 1000) -> list[Change]:
        query = select(changes).order_by(changes.c.observed_at.desc()).limit(limit)
        if event_id is not None:
            query = query.where(changes.c.event_id == event_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_change(row) for row in reversed(rows)]


async def _set_due(conn: AsyncConnection, due: dict[float, list[str]]) -> None:
    for due_at, event_ids in due.items():
        for chunk in _chunks(event_ids):
            await conn.execute(
                update(events)
                .where(events.c.event_id.in_(chunk))
                .values(next_due_at=due_at, claim_token=None)
            )


async def _changes_by_id(conn: AsyncConnection, ids: list[str]) -> dict[str, Change]:
    rows = (await conn.execute(select(changes).where(changes.c.id.in_(set(ids))))).all()
    return {row.id: _change(row) for row in rows}


def _event_row(row: Any) -> EventRow:
    return EventRow(
        event_id=row.event_id,
        name=row.name,
        watched=row.watched,
        current=_availability(row.status, row.resale_status),
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        last_changed_at=row.last_changed_at,
        next_due_at=row.next_due_at,
    )


def _change(row: Any) -> Change:
    return Change(
        id=row.id,
        event_id=row.event_id,
        event_name=row.event_name,
        previous=_availability(row.previous_status, row.previous_resale_status),
        current=Availability(STATUS_BY_NAME[row.status], RESALE_BY_NAME[row.resale_status]),
        observed_at=row.observed_at,
    )
