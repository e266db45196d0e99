"""Batches: which events share a request, and when each batch is due.

Events are grouped once, when the watchlist is synced, into batches of at most
`batch_size` events that share an interval and a partition (ticketing source and region,
which Ticketmaster asks never to mix in one request). A batch is the unit of polling: it is due as
a whole, claimed as a whole and fetched in one request, so the database writes one row per
batch per poll, not one per event. New batches, and batches left overdue by a long downtime,
are spread over their interval, so a start never fires every event at once while requests
stay full; after a short restart the overdue batches go first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from monitor.store.records import BatchKey


@dataclass(frozen=True, slots=True)
class Batch:
    id: str
    key: BatchKey
    next_due_at: float
    members: frozenset[str]


@dataclass(slots=True)
class BatchPlan:
    """What `plan_batches` changes: every field lists only what differs from today."""

    assign: dict[str, str] = field(default_factory=dict)
    """Event ID to its (new) batch ID."""
    created: dict[str, tuple[BatchKey, float]] = field(default_factory=dict)
    """New batch ID to (key, first due time)."""
    rescheduled: dict[str, float] = field(default_factory=dict)
    """Existing batch ID to its new due time (it was overdue)."""
    dropped: set[str] = field(default_factory=set)
    """Batches left without members."""


def spread(count: int, interval: float, start: float) -> list[float]:
    """`count` due times spaced evenly over one interval from `start`."""
    return [start + index * interval / count for index in range(count)]


def plan_batches(
    wanted: Mapping[str, BatchKey],
    batches: Mapping[str, Batch],
    batch_size: int,
    now: float,
    new_id: Callable[[], str],
) -> BatchPlan:
    """Group `wanted` (event ID to batch key) into batches, keeping events where they are.

    An event stays in its batch while the batch's key is still the event's and the batch is
    not over `batch_size`; the others fill batches with room, then new ones.
    """
    plan = BatchPlan()
    kept = {
        batch.id: sorted(e for e in batch.members if wanted.get(e) == batch.key)[:batch_size]
        for batch in batches.values()
    }
    placed = {event_id for members in kept.values() for event_id in members}
    homeless: dict[BatchKey, list[str]] = {}
    for event_id, key in wanted.items():
        if event_id not in placed:
            homeless.setdefault(key, []).append(event_id)
    for key, unplaced in homeless.items():
        with_room = [b for b in batches.values() if b.key == key and len(kept[b.id]) < batch_size]
        rest = _fill(plan, unplaced, with_room, kept, batch_size)
        _create(plan, key, rest, batch_size=batch_size, now=now, new_id=new_id)
    _drop_and_reschedule(plan, batches, kept, now)
    return plan


def _fill(
    plan: BatchPlan,
    unplaced: list[str],
    with_room: list[Batch],
    kept: dict[str, list[str]],
    batch_size: int,
) -> list[str]:
    """Put events into existing batches with room; returns those left over."""
    rest = unplaced
    for batch in with_room:
        room = batch_size - len(kept[batch.id])
        taken, rest = rest[:room], rest[room:]
        kept[batch.id].extend(taken)
        plan.assign.update(dict.fromkeys(taken, batch.id))
    return rest


def _create(
    plan: BatchPlan,
    key: BatchKey,
    events: list[str],
    *,
    batch_size: int,
    now: float,
    new_id: Callable[[], str],
) -> None:
    """New batches for `events`, due spread over their interval."""
    fresh = [events[i : i + batch_size] for i in range(0, len(events), batch_size)]
    for due_at, members in zip(spread(len(fresh), key.interval, now), fresh, strict=True):
        batch_id = new_id()
        plan.created[batch_id] = (key, due_at)
        plan.assign.update(dict.fromkeys(members, batch_id))


def _drop_and_reschedule(
    plan: BatchPlan, batches: Mapping[str, Batch], kept: dict[str, list[str]], now: float
) -> None:
    """Batches left empty go. Batches overdue by more than their interval (long downtime) come
    due again spread over it; those overdue by less (a restart) stay due, most overdue first,
    so no event waits an interval longer than planned."""
    overdue: dict[BatchKey, list[Batch]] = {}
    for batch in batches.values():
        if not kept[batch.id]:
            plan.dropped.add(batch.id)
        elif batch.next_due_at < now - batch.key.interval:
            overdue.setdefault(batch.key, []).append(batch)
    for key, late in overdue.items():
        late.sort(key=lambda b: b.next_due_at)
        for batch, due_at in zip(late, spread(len(late), key.interval, now), strict=True):
            plan.rescheduled[batch.id] = due_at
