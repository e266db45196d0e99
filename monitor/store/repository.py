"""Every database operation the monitor performs, as set-based SQLAlchemy Core statements.

Writes on the hot path are one transaction per polled batch; claims use
`FOR UPDATE SKIP LOCKED` on PostgreSQL so replicas sharing a database never poll or
deliver the same thing twice at once (SQLite serialises writers with BEGIN IMMEDIATE).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.models import (
    RESALE_BY_NAME,
    STATUS_BY_NAME,
    Availability,
    Change,
    Delivery,
    EventState,
)
from monitor.rules import cooldown_decision
from monitor.schedule import Batch, plan_batches
from monitor.store.tables import (
    batches,
    changes,
    deliveries,
    delivery_attempts,
    events,
    snapshots,
)

# SQLite allows 32,766 bound parameters per statement; stay well below for IN lists.
_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class WatchEntry:
    event_id: str
    name: str | None
    interval: float


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at a delivery: `outcome` is delivered, failed (retried at next_attempt_at) or
    dead."""

    delivery_id: str
    attempted_at: float
    outcome: str
    status_code: int | None = None
    error: str | None = None
    next_attempt_at: float | None = None


_STATE_AFTER = {"delivered": "delivered", "failed": "pending", "dead": "dead"}


@dataclass(frozen=True, slots=True)
class ClaimedBatch:
    id: str
    interval: float
    last_polled_at: float | None
    version: int


@dataclass(slots=True)
class PollWrite:
    """Everything some polled batches change, written in one transaction.

    An event read unchanged appears nowhere: its batch's `polled` row stands for it.
    """

    updated: list[dict[str, Any]] = field(default_factory=list)
    unread: list[dict[str, Any]] = field(default_factory=list)
    """Events a successful answer left out: they keep their state and last-seen time."""
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    polled: list[dict[str, Any]] = field(default_factory=list)
    """Batches answered: b_id, b_polled_at, b_due (the next due time) and b_version."""
    postponed: list[dict[str, Any]] = field(default_factory=list)
    """Batches not answered: b_id and b_due."""

    def merge(self, other: PollWrite) -> None:
        self.updated.extend(other.updated)
        self.unread.extend(other.unread)
        self.snapshots.extend(other.snapshots)
        self.changes.extend(other.changes)
        self.deliveries.extend(other.deliveries)
        self.polled.extend(other.polled)
        self.postponed.extend(other.postponed)


@dataclass(frozen=True, slots=True)
class EventRow:
    event_id: str
    name: str | None
    watched: bool
    current: Availability | None
    first_seen_at: float | None
    last_seen_at: float | None
    last_changed_at: float | None
    next_due_at: float | None


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
        read_in_last_poll=True,
    )
)

_RECORD_ATTEMPT = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("b_id"))
    .values(
        attempts=deliveries.c.attempts + 1,
        state=bindparam("b_state"),
        last_error=bindparam("b_error"),
        next_attempt_at=func.coalesce(bindparam("b_next"), deliveries.c.next_attempt_at),
        finished_at=bindparam("b_finished"),
    )
)

_UNREAD_EVENT = (
    update(events)
    .where(events.c.event_id == bindparam("b_event_id"))
    .values(
        last_seen_at=func.coalesce(bindparam("b_seen_at"), events.c.last_seen_at),
        read_in_last_poll=False,
    )
)


# Every possible stored pair, built once: claims turn thousands of rows into states.
_AVAILABILITY = {
    (status.value, resale.value): Availability(status, resale)
    for status in STATUS_BY_NAME.values()
    for resale in RESALE_BY_NAME.values()
}


def _availability(status: str | None, resale: str | None) -> Availability | None:
    if status is None or resale is None:
        return None
    return _AVAILABILITY[status, resale]


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
        batch_size: int,
        now: float,
        new_id: Callable[[], str],
    ) -> tuple[list[str], list[str]]:
        """Make the watched set equal `entries`; returns the IDs added and those dropped.

        Events are grouped into batches (see `plan_batches`); dropped events keep their rows
        and history, and resume where they stood if they come back.
        """
        wanted = {entry.event_id: entry for entry in entries}
        async with self.engine.begin() as conn:
            known = {
                row.event_id: row
                for row in await conn.execute(
                    select(events.c.event_id, events.c.name, events.c.batch_id)
                )
            }
            members: dict[str, set[str]] = {}
            for row in known.values():
                if row.batch_id is not None:
                    members.setdefault(row.batch_id, set()).add(row.event_id)
            current = {
                row.id: Batch(
                    row.id, row.interval_s, row.next_due_at, frozenset(members.get(row.id, ()))
                )
                for row in await conn.execute(select(batches))
            }
            plan = plan_batches(
                {eid: entry.interval for eid, entry in wanted.items()},
                current,
                batch_size,
                now,
                new_id,
            )
            if plan.created:
                await conn.execute(
                    insert(batches),
                    [
                        {"id": bid, "interval_s": interval, "next_due_at": due_at, "version": 0}
                        for bid, (interval, due_at) in plan.created.items()
                    ],
                )
            if plan.rescheduled:
                await conn.execute(
                    update(batches)
                    .where(batches.c.id == bindparam("b_id"))
                    .values(next_due_at=bindparam("b_due")),
                    [{"b_id": bid, "b_due": due} for bid, due in plan.rescheduled.items()],
                )
            added = [eid for eid in wanted if eid not in known]
            if added:
                await conn.execute(
                    insert(events),
                    [
                        {
                            "event_id": eid,
                            "name": wanted[eid].name,
                            "batch_id": plan.assign[eid],
                            "unknown_streak": 0,
                            "read_in_last_poll": False,
                        }
                        for eid in added
                    ],
                )
            moved = [
                {"b_event_id": eid, "b_name": wanted[eid].name, "b_batch": plan.assign[eid]}
                for eid in wanted
                if eid in known and eid in plan.assign
            ]
            if moved:
                await conn.execute(
                    update(events)
                    .where(events.c.event_id == bindparam("b_event_id"))
                    .values(
                        name=bindparam("b_name"),
                        batch_id=bindparam("b_batch"),
                        read_in_last_poll=False,
                    ),
                    moved,
                )
            renamed = [
                {"b_event_id": eid, "b_name": wanted[eid].name}
                for eid in wanted
                if eid in known and eid not in plan.assign and known[eid].name != wanted[eid].name
            ]
            if renamed:
                await conn.execute(
                    update(events)
                    .where(events.c.event_id == bindparam("b_event_id"))
                    .values(name=bindparam("b_name")),
                    renamed,
                )
            removed = [
                eid for eid, row in known.items() if row.batch_id is not None and eid not in wanted
            ]
            for chunk in _chunks(removed):
                await conn.execute(
                    update(events)
                    .where(events.c.event_id.in_(chunk))
                    .values(batch_id=None, read_in_last_poll=False)
                )
            if plan.dropped:
                await conn.execute(delete(batches).where(batches.c.id.in_(plan.dropped)))
            # Memberships may have moved: no cached state of any batch is trusted after this.
            await conn.execute(update(batches).values(version=batches.c.version + 1))
        return added, removed

    # -- polling -------------------------------------------------------------------------

    async def claim_due(self, now: float, limit: int, lease_until: float) -> list[ClaimedBatch]:
        """Take up to `limit` due batches, pushing their due time to `lease_until`.

        Should this process die mid-poll, the batches come due again when the lease ends.
        """
        due = (
            select(batches.c.id)
            .where(batches.c.next_due_at <= now)
            .order_by(batches.c.next_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(batches)
            .where(batches.c.id.in_(due.scalar_subquery()))
            .values(next_due_at=lease_until)
            .returning(
                batches.c.id, batches.c.interval_s, batches.c.last_polled_at, batches.c.version
            )
        )
        async with self.engine.begin() as conn:
            claimed = (await conn.execute(claim)).all()
        return [ClaimedBatch(*row) for row in claimed]

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
        ).where(events.c.batch_id.in_(batch_ids))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        states: dict[str, dict[str, EventState]] = {batch_id: {} for batch_id in batch_ids}
        for batch_id, event_id, status, resale, streak, snapshot_at, read in rows:
            current = None if status is None else _AVAILABILITY[status, resale]
            states[batch_id][event_id] = EventState(event_id, current, streak, snapshot_at, read)
        return states

    async def save_poll(self, write: PollWrite) -> None:
        async with self.engine.begin() as conn:
            if write.updated:
                await conn.execute(_UPDATE_EVENT, write.updated)
            if write.unread:
                await conn.execute(_UNREAD_EVENT, write.unread)
            if write.snapshots:
                await conn.execute(insert(snapshots), write.snapshots)
            if write.changes:
                await conn.execute(insert(changes), write.changes)
            if write.deliveries:
                await conn.execute(insert(deliveries), write.deliveries)
            if write.polled:
                await conn.execute(
                    update(batches)
                    .where(batches.c.id == bindparam("b_id"))
                    .values(
                        last_polled_at=bindparam("b_polled_at"),
                        next_due_at=bindparam("b_due"),
                        version=bindparam("b_version"),
                    ),
                    write.polled,
                )
            if write.postponed:
                await conn.execute(
                    update(batches)
                    .where(batches.c.id == bindparam("b_id"))
                    .values(next_due_at=bindparam("b_due")),
                    write.postponed,
                )

    # -- delivery outbox -----------------------------------------------------------------

    async def claim_deliveries(
        self,
        notifier: str,
        now: float,
        limit: int,
        lease_until: float | Callable[[int], float],
    ) -> list[Delivery]:
        """Take up to `limit` pending deliveries for `notifier` that are due at `now`.

        `lease_until` may depend on how many were taken: a long queue needs a long lease, a
        single delivery a short one, so a crash delays its retry no more than necessary.

        Deliveries under a cooldown are decided here, in the same transaction: held back
        until the cooldown ends, or superseded by a later change (see `cooldown_decision`).
        """
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
        longest = lease_until(limit) if callable(lease_until) else lease_until
        claim = (
            update(deliveries)
            .where(deliveries.c.id.in_(due.scalar_subquery()))
            .values(next_attempt_at=longest)
            .returning(
                deliveries.c.id,
                deliveries.c.change_id,
                deliveries.c.attempts,
                deliveries.c.cooldown_s,
                deliveries.c.created_at,
            )
        )
        async with self.engine.begin() as conn:
            # Oldest first: a grouped message lists its changes in the order they happened.
            claimed = sorted((await conn.execute(claim)).all(), key=lambda row: row.created_at)
            if not claimed:
                return []
            if callable(lease_until) and len(claimed) < limit:
                await conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_([row.id for row in claimed]))
                    .values(next_attempt_at=lease_until(len(claimed)))
                )
            found = await _changes_by_id(conn, [row.change_id for row in claimed])
            cooled = [row for row in claimed if row.cooldown_s > 0]
            held: set[str] = set()
            if cooled:
                held = await _apply_cooldowns(conn, notifier, cooled, found, now)
        return [
            Delivery(row.id, notifier, found[row.change_id], row.attempts + 1, now)
            for row in claimed
            if row.id not in held
        ]

    async def record_attempts(self, attempts: Sequence[Attempt]) -> None:
        """Log attempts, all in one transaction, and move each delivery on accordingly."""
        if not attempts:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                _RECORD_ATTEMPT,
                [
                    {
                        "b_id": a.delivery_id,
                        "b_state": _STATE_AFTER[a.outcome],
                        "b_error": a.error,
                        "b_next": a.next_attempt_at if a.outcome == "failed" else None,
                        "b_finished": None if a.outcome == "failed" else a.attempted_at,
                    }
                    for a in attempts
                ],
            )
            await conn.execute(
                insert(delivery_attempts),
                [
                    {
                        "delivery_id": a.delivery_id,
                        "attempted_at": a.attempted_at,
                        "outcome": a.outcome,
                        "status_code": a.status_code,
                        "error": a.error,
                    }
                    for a in attempts
                ],
            )

    async def requeue_deliveries(
        self, now: float, *, ids: Sequence[str] = (), all_dead: bool = False
    ) -> int:
        """Put dead deliveries back in the queue, due now; returns how many."""
        query = update(deliveries).where(deliveries.c.state == "dead")
        if not all_dead:
            query = query.where(deliveries.c.id.in_(ids))
        async with self.engine.begin() as conn:
            result = await conn.execute(
                query.values(state="pending", next_attempt_at=now, finished_at=None)
            )
        return int(result.rowcount)

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
        query = _EVENT_ROWS.order_by(events.c.name, events.c.event_id)
        if watched_only:
            query = query.where(events.c.batch_id.is_not(None))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_event_row(row) for row in rows]

    async def event_row(self, event_id: str) -> EventRow | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(_EVENT_ROWS.where(events.c.event_id == event_id))).first()
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


async def _apply_cooldowns(
    conn: AsyncConnection, notifier: str, rows: list[Any], found: dict[str, Change], now: float
) -> set[str]:
    """Hold back or supersede claimed deliveries under a cooldown; returns their IDs."""
    event_ids = {found[row.change_id].event_id for row in rows}
    history = await conn.execute(
        select(
            changes.c.event_id,
            deliveries.c.id,
            deliveries.c.state,
            deliveries.c.created_at,
            deliveries.c.finished_at,
            changes.c.status,
            changes.c.resale_status,
        )
        .join(changes, changes.c.id == deliveries.c.change_id)
        .where(
            deliveries.c.notifier == notifier,
            deliveries.c.state.in_(("pending", "delivered")),
            changes.c.event_id.in_(event_ids),
        )
    )
    last_sent: dict[str, tuple[float, Availability]] = {}
    newest_pending: dict[str, tuple[float, str]] = {}
    for event_id, delivery_id, state, created_at, finished_at, status, resale in history:
        if state == "delivered":
            if event_id not in last_sent or finished_at > last_sent[event_id][0]:
                last_sent[event_id] = (finished_at, _AVAILABILITY[status, resale])
        elif event_id not in newest_pending or created_at > newest_pending[event_id][0]:
            newest_pending[event_id] = (created_at, delivery_id)
    held: set[str] = set()
    superseded: list[str] = []
    for row in rows:
        change = found[row.change_id]
        decision = cooldown_decision(
            change.current,
            row.cooldown_s,
            last_sent.get(change.event_id),
            newest_pending[change.event_id][1] != row.id,
            now,
        )
        if decision is True:
            continue
        held.add(row.id)
        if decision is False:
            superseded.append(row.id)
        else:
            await conn.execute(
                update(deliveries).where(deliveries.c.id == row.id).values(next_attempt_at=decision)
            )
    if superseded:
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(superseded))
            .values(state="superseded", finished_at=now)
        )
    return held


async def _changes_by_id(conn: AsyncConnection, ids: list[str]) -> dict[str, Change]:
    rows = (await conn.execute(select(changes).where(changes.c.id.in_(set(ids))))).all()
    return {row.id: _change(row) for row in rows}


_EVENT_ROWS = select(events, batches.c.next_due_at, batches.c.last_polled_at).select_from(
    events.outerjoin(batches, events.c.batch_id == batches.c.id)
)


def _event_row(row: Any) -> EventRow:
    read_with_batch = row.read_in_last_poll and row.last_polled_at is not None
    return EventRow(
        event_id=row.event_id,
        name=row.name,
        watched=row.batch_id is not None,
        current=_availability(row.status, row.resale_status),
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_polled_at if read_with_batch else row.last_seen_at,
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
