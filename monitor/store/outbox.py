"""The delivery outbox: claims with leases, cooldown decisions, and recorded attempts.

Deliveries are written by the poller together with their changes (see `Repository.save_poll`);
everything after that happens here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.models import Availability, Change, Delivery
from monitor.notify.routing import cooldown_decision
from monitor.store.repository import AVAILABILITY, changes_by_id
from monitor.store.tables import changes, deliveries, delivery_attempts


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


class Outbox:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

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
            found = await changes_by_id(conn, [row.change_id for row in claimed])
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
                last_sent[event_id] = (finished_at, AVAILABILITY[status, resale])
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
