"""The typed records of `store.records` as bind parameters and the statements that take them."""

from __future__ import annotations

import orjson
from sqlalchemy import bindparam, func, select, update

from monitor.models import Change, DeliveryState
from monitor.store.records import (
    BatchPolled,
    BatchPostponed,
    EventUnread,
    EventUpdate,
    NewDelivery,
    NewSnapshot,
)
from monitor.store.tables import batches, events

UPDATE_EVENT = (
    update(events)
    .where(events.c.event_id == bindparam("b_event_id"))
    .values(
        status=bindparam("b_status"),
        resale_status=bindparam("b_resale_status"),
        unknown_streak=bindparam("b_unknown_streak"),
        status_detail=bindparam("b_status_detail"),
        resale_status_detail=bindparam("b_resale_status_detail"),
        first_seen_at=func.coalesce(events.c.first_seen_at, bindparam("b_seen_at")),
        last_seen_at=bindparam("b_seen_at"),
        last_changed_at=func.coalesce(bindparam("b_changed_at"), events.c.last_changed_at),
        last_snapshot_at=func.coalesce(bindparam("b_snapshot_at"), events.c.last_snapshot_at),
        read_in_last_poll=True,
    )
)

UNREAD_EVENT = (
    update(events)
    .where(events.c.event_id == bindparam("b_event_id"))
    .values(
        last_seen_at=func.coalesce(bindparam("b_seen_at"), events.c.last_seen_at),
        read_in_last_poll=False,
    )
)


POLLED = (
    update(batches)
    .where(batches.c.id == bindparam("b_id"))
    .values(
        last_polled_at=bindparam("b_polled_at"),
        next_due_at=bindparam("b_due"),
        version=batches.c.version + bindparam("b_bump"),
        failures=0,
        claimed_by=None,
    )
)

_CLAIMED_COLUMNS = (
    batches.c.id,
    batches.c.partition,
    batches.c.size,
    batches.c.next_due_at,
    batches.c.failures,
    batches.c.interval_s,
    batches.c.last_polled_at,
    batches.c.version,
    batches.c.claimed_by,
    batches.c.invalid,
)

# The claim's statements are built once: a claim runs on every wake, and building them
# (100 bound IDs each time) would cost more than running them.
SOONEST_FIRST = (
    select(*_CLAIMED_COLUMNS)
    .order_by(batches.c.next_due_at)
    .limit(bindparam("b_most"))
    .with_for_update(skip_locked=True)
)
"""The batches due soonest, due or not: the due ones to claim, the others to ride along or
to say when the next claim is worth a look, all in one read."""

CLAIM = (
    update(batches)
    .where(batches.c.id.in_(bindparam("b_ids", expanding=True)))
    .values(next_due_at=bindparam("b_lease_until"), claimed_by=bindparam("b_replica"))
)

POSTPONED = (
    update(batches)
    .where(batches.c.id == bindparam("b_id"))
    .values(next_due_at=bindparam("b_due"), failures=bindparam("b_failures"), claimed_by=None)
)


def updated(u: EventUpdate) -> dict[str, object]:
    current, detail = u.current, u.detail
    return {
        "b_event_id": u.event_id,
        "b_status": current and current.status.value,
        "b_resale_status": current and current.resale_status.value,
        "b_unknown_streak": u.unknown_streak,
        "b_status_detail": detail and detail.status,
        "b_resale_status_detail": detail and detail.resale,
        "b_seen_at": u.seen_at,
        "b_changed_at": u.changed_at,
        "b_snapshot_at": u.snapshot_at,
    }


def unread(u: EventUnread) -> dict[str, object]:
    return {"b_event_id": u.event_id, "b_seen_at": u.seen_at}


def snapshot(s: NewSnapshot) -> dict[str, object]:
    return {
        "event_id": s.event_id,
        "status": s.availability.status.value,
        "resale_status": s.availability.resale_status.value,
        "observed_at": s.observed_at,
    }


def change(c: Change) -> dict[str, object]:
    previous = c.previous
    return {
        "id": c.id,
        "event_id": c.event_id,
        "event_name": c.event_name,
        "previous_status": previous and previous.status.value,
        "previous_resale_status": previous and previous.resale_status.value,
        "status": c.current.status.value,
        "resale_status": c.current.resale_status.value,
        "observed_at": c.observed_at,
        "kind": c.kind.value,
        "detail": change_detail(c),
    }


def change_detail(c: Change) -> str | None:
    """What a change of another kind than inventory says, as JSON."""
    if c.lifecycle is not None:
        return orjson.dumps({"previous": c.lifecycle[0], "current": c.lifecycle[1]}).decode()
    if c.sale is not None:
        sale = c.sale
        return orjson.dumps(
            {"kind": sale.kind, "name": sale.name, "starts_at": sale.starts_at}
        ).decode()
    return None


def delivery(d: NewDelivery) -> dict[str, object]:
    return {
        "id": d.id,
        "change_id": d.change_id,
        "notifier": d.notifier,
        "state": DeliveryState.PENDING,
        "attempts": 0,
        "created_at": d.created_at,
        "next_attempt_at": d.created_at,
        "cooldown_s": d.cooldown,
        "urgent": d.urgent,
    }


def polled(b: BatchPolled) -> dict[str, object]:
    return {
        "b_id": b.batch_id,
        "b_polled_at": b.polled_at,
        "b_due": b.next_due,
        "b_bump": int(b.revised),
    }


def postponed(b: BatchPostponed) -> dict[str, object]:
    return {"b_id": b.batch_id, "b_due": b.next_due, "b_failures": b.failures}
