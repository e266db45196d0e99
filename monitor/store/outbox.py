"""The delivery outbox: claims with leases, what policy stages need to know, what they
decided, and recorded attempts.

Deliveries are written by the poller together with their changes (see `Repository.save_poll`);
the dispatcher decides what becomes of them (`notify`), and the outbox applies it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.models import Availability, ChangeKind, Delivery, DeliveryState, Outcome
from monitor.store.accounts import owner_of
from monitor.store.engine import reader
from monitor.store.rows import AVAILABILITY, changes_by_id
from monitor.store.tables import (
    changes,
    deliveries,
    delivery_attempts,
    subscriptions,
    users,
    watches,
)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at a delivery: `outcome` is delivered, failed (retried at next_attempt_at) or
    dead."""

    delivery_id: str
    attempted_at: float
    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    next_attempt_at: float | None = None


class Claimed(NamedTuple):
    delivery: Delivery
    cooldown: float
    """The delivery's cooldown in seconds (0: none); the dispatcher applies it."""
    urgent: bool = False
    """It ignores quiet hours."""
    snoozed_until: float | None = None
    """The event's snooze, if it has one (or had one: it decides what a snooze held)."""


class CooldownHistory(NamedTuple):
    """Per event: when its last delivered message went out and what it said, and the ID of
    its newest pending delivery."""

    last_sent: dict[str, tuple[float, Availability]]
    newest_pending: dict[str, str]


_STATE_AFTER = {
    Outcome.DELIVERED: DeliveryState.DELIVERED,
    Outcome.FAILED: DeliveryState.PENDING,
    Outcome.DEAD: DeliveryState.DEAD,
}


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
    event_name: str | None = None
    """The event's name when the change was seen."""


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


def _snoozes(notifier: str, event_ids: Collection[str]) -> Select[str, float]:
    """The snoozes on `event_ids` that hold `notifier`'s deliveries: the watch's for a
    notifier of the config file, the owner's subscription's for a user's channel."""
    owner = owner_of(notifier)
    if owner is None:
        return select(watches.c.event_id, watches.c.snoozed_until).where(
            watches.c.event_id.in_(event_ids), watches.c.snoozed_until.is_not(None)
        )
    return (
        select(subscriptions.c.event_id, subscriptions.c.snoozed_until)
        .join(users, users.c.id == subscriptions.c.user_id)
        .where(
            users.c.name == owner,
            subscriptions.c.event_id.in_(event_ids),
            subscriptions.c.snoozed_until.is_not(None),
        )
    )


class Outbox:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)

    async def claim_deliveries(
        self,
        notifier: str,
        now: float,
        limit: int,
        lease_until: float | Callable[[int], float],
    ) -> list[Claimed]:
        """Take up to `limit` pending deliveries for `notifier` that are due at `now`.

        `lease_until` may depend on how many were taken: a long queue needs a long lease, a
        single delivery a short one, so a crash delays its retry no more than necessary.
        """
        due = (
            select(deliveries.c.id)
            .where(
                deliveries.c.state == DeliveryState.PENDING,
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
                deliveries.c.urgent,
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
            found = await changes_by_id(conn, [row.change_id for row in claimed])
            event_ids = {c.event_id for c in found.values()}
            rows = (await conn.execute(_snoozes(notifier, event_ids))).all()
            snoozes = {row.event_id: row.snoozed_until for row in rows}
        return [
            Claimed(
                Delivery(row.id, notifier, found[row.change_id], row.attempts + 1, now),
                row.cooldown_s,
                row.urgent,
                snoozes.get(found[row.change_id].event_id),
            )
            for row in claimed
        ]

    async def pending_by_notifier(self) -> dict[str, float]:
        """When the first pending delivery of each notifier with any is due. A read: the
        dispatcher looks before it takes the write lock to claim, and with a channel for
        each of a thousand users, claims only for those with something due."""
        query = (
            select(deliveries.c.notifier, func.min(deliveries.c.next_attempt_at))
            .where(deliveries.c.state == DeliveryState.PENDING)
            .group_by(deliveries.c.notifier)
        )
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row[0]: row[1] for row in rows}

    async def waiting(self, notifier: str) -> tuple[float | None, float | None]:
        """When the oldest pending delivery never attempted became due, and when the earliest
        retry is due: what a group window is derived from."""
        first_try = deliveries.c.attempts == 0
        query = select(
            func.min(case((first_try, deliveries.c.next_attempt_at))),
            func.min(case((~first_try, deliveries.c.next_attempt_at))),
        ).where(deliveries.c.state == DeliveryState.PENDING, deliveries.c.notifier == notifier)
        async with self._reader.connect() as conn:
            oldest_new, oldest_retry = (await conn.execute(query)).one()
        return oldest_new, oldest_retry

    async def cooldown_history(self, notifier: str, event_ids: set[str]) -> CooldownHistory:
        history = await self._history(notifier, event_ids)
        last_sent: dict[str, tuple[float, Availability]] = {}
        newest_pending: dict[str, tuple[float, str]] = {}
        for event_id, delivery_id, state, created_at, finished_at, status, resale in history:
            if state == DeliveryState.DELIVERED:
                if event_id not in last_sent or finished_at > last_sent[event_id][0]:
                    last_sent[event_id] = (finished_at, AVAILABILITY[status, resale])
            elif event_id not in newest_pending or created_at > newest_pending[event_id][0]:
                newest_pending[event_id] = (created_at, delivery_id)
        return CooldownHistory(
            last_sent, {event_id: pending[1] for event_id, pending in newest_pending.items()}
        )

    async def _history(self, notifier: str, event_ids: set[str]) -> Sequence[Any]:
        query = (
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
                deliveries.c.state.in_((DeliveryState.PENDING, DeliveryState.DELIVERED)),
                changes.c.event_id.in_(event_ids),
                changes.c.kind == ChangeKind.INVENTORY.value,
            )
        )
        async with self._reader.connect() as conn:
            return (await conn.execute(query)).all()

    async def settle(
        self, deferred: Mapping[str, float], dropped: Sequence[str], now: float
    ) -> None:
        """Apply what the policy decided about claimed deliveries: some wait until a later
        time, others are superseded and never sent."""
        if not deferred and not dropped:
            return
        async with self.engine.begin() as conn:
            if deferred:
                await conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == bindparam("b_id"))
                    .values(next_attempt_at=bindparam("b_at")),
                    [{"b_id": i, "b_at": at} for i, at in deferred.items()],
                )
            if dropped:
                await conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_(list(dropped)))
                    .values(state=DeliveryState.SUPERSEDED, finished_at=now)
                )

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
                        "b_next": a.next_attempt_at if a.outcome is Outcome.FAILED else None,
                        "b_finished": None if a.outcome is Outcome.FAILED else a.attempted_at,
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

    async def retry_now(self, notifier: str, now: float, sending: Collection[str]) -> int:
        """Make `notifier`'s deliveries waiting out a retry due now, except those `sending`
        (claimed by this process); returns how many. For a receiver that is back: what waits
        for it should not wait out a backoff meant for a receiver that is down."""
        query = (
            update(deliveries)
            .where(
                deliveries.c.state == DeliveryState.PENDING,
                deliveries.c.notifier == notifier,
                deliveries.c.attempts > 0,
                deliveries.c.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )
        if sending:
            query = query.where(deliveries.c.id.not_in(list(sending)))
        async with self.engine.begin() as conn:
            result = await conn.execute(query)
        return int(result.rowcount)

    async def requeue_deliveries(
        self, now: float, *, ids: Sequence[str] = (), all_dead: bool = False
    ) -> int:
        """Put dead deliveries back in the queue, due now; returns how many."""
        query = update(deliveries).where(deliveries.c.state == DeliveryState.DEAD)
        if not all_dead:
            query = query.where(deliveries.c.id.in_(ids))
        async with self.engine.begin() as conn:
            result = await conn.execute(
                query.values(state=DeliveryState.PENDING, next_attempt_at=now, finished_at=None)
            )
        return int(result.rowcount)

    async def list_deliveries(
        self, *, dead_only: bool = False, limit: int = 50
    ) -> list[DeliveryRow]:
        query = (
            select(deliveries, changes.c.event_id, changes.c.event_name)
            .join(changes, changes.c.id == deliveries.c.change_id)
            .order_by(deliveries.c.created_at.desc())
            .limit(limit)
        )
        if dead_only:
            query = query.where(deliveries.c.state == DeliveryState.DEAD)
        async with self._reader.connect() as conn:
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
                r.event_name,
            )
            for r in rows
        ]
