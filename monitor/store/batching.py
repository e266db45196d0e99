"""Batches: which events are polled together, and when each batch is due.

Events are grouped once, when the watchlist is synced, into batches of at most `UNIT`
events that share an interval and a partition (ticketing source and region, which
Ticketmaster asks never to mix in one request). A batch is the unit of scheduling: it is
due as a whole and claimed as a whole, so the database writes one row per batch per poll,
not one per event. New batches, and batches left overdue by a long downtime, are spread
over their interval, so a start never fires every event at once; after a short restart the
overdue batches go first.

A claim groups batches by partition (`assemble`): the due ones, then, while the last
request of the group has room, the batches of that partition due soonest. A group is cut
into requests ID by ID when it is sent, so every request but its last is full. A request
costs the same whatever it carries, so the batches that fill the room ride along for free
and count as polled: nobody is polled later than their interval, and most are polled
sooner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from monitor.store.records import BatchKey

UNIT = 100
"""The most events in one batch: small enough that requests are filled with little waste,
large enough that a poll writes few rows."""


def unit_size(pinned_batch_size: int | None) -> int:
    """Batches never hold more than a request may carry."""
    return min(pinned_batch_size or UNIT, UNIT)


@dataclass(frozen=True, slots=True)
class Claimable:
    """A batch as a claim sees it."""

    id: str
    partition: str
    size: int
    next_due_at: float
    failures: int = 0


def assemble(
    due: Sequence[Claimable], waiting: Sequence[Claimable], capacity: int, limit: int
) -> list[list[Claimable]]:
    """The `due` batches, most overdue first, grouped by partition, as far as they fill at
    most `limit` requests of `capacity` IDs: a partition's group is laid end to end and cut
    into requests of that many IDs when it is sent (see `polling.pieces`), so what a group
    costs is its IDs over `capacity`, rounded up. The room its last request leaves is
    filled with the `waiting` batches of the partition due soonest that fit. A batch with
    failed polls behind it goes alone: whatever made it fail must not fail the others. Due
    batches left over stay due.
    """
    width = max(1, capacity)
    groups: list[list[Claimable]] = []
    sizes: list[int] = []
    open_by_partition: dict[str, int] = {}
    used = 0

    def cost(ids: int) -> int:
        return -(-ids // width)

    for batch in sorted(due, key=_due_time):
        index = open_by_partition.get(batch.partition) if batch.failures == 0 else None
        before = 0 if index is None else sizes[index]
        extra = cost(before + batch.size) - cost(before)
        if used + extra > limit:
            continue
        used += extra
        if index is None:
            groups.append([batch])
            sizes.append(batch.size)
            if batch.failures == 0:
                open_by_partition[batch.partition] = len(groups) - 1
        else:
            groups[index].append(batch)
            sizes[index] += batch.size
    for batch in sorted(waiting, key=_due_time):
        index = open_by_partition.get(batch.partition)
        if batch.failures or index is None:
            continue
        if sizes[index] + batch.size <= cost(sizes[index]) * width:
            groups[index].append(batch)
            sizes[index] += batch.size
    return groups


def _due_time(batch: Claimable) -> float:
    return batch.next_due_at


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
    """Existing batch ID to its new due time (it was overdue, or took in a new watch)."""
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
    _due_now_for_newcomers(plan, batches, now)
    return plan


def _due_now_for_newcomers(plan: BatchPlan, batches: Mapping[str, Batch], now: float) -> None:
    """A batch that takes in a newly watched event is due now: the first reading of a watch
    just added comes within a tick, not up to an interval later. An event that only moves
    between batches (another interval) keeps to the schedule."""
    watched = {event_id for batch in batches.values() for event_id in batch.members}
    for event_id, batch_id in plan.assign.items():
        batch = batches.get(batch_id)
        if batch is not None and event_id not in watched and batch.next_due_at > now:
            plan.rescheduled[batch_id] = now


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
