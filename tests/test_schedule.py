from __future__ import annotations

import itertools
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.polling.ticker import gather_for, tick_for
from monitor.store.batching import Batch, BatchPlan, plan_batches, spread
from monitor.store.records import BatchKey

pytestmark = pytest.mark.unit

NOW = 1000.0


def ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(count)]


def plan(
    wanted: dict[str, float] | dict[str, BatchKey],
    batches: dict[str, Batch] | None = None,
    size: int = 100,
) -> BatchPlan:
    numbers = itertools.count()
    keys = {e: k if isinstance(k, BatchKey) else BatchKey(k) for e, k in wanted.items()}
    return plan_batches(keys, batches or {}, size, NOW, lambda: f"b{next(numbers)}")


@pytest.mark.parametrize(
    ("count", "batch_size", "interval", "expected_batches"),
    [
        (0, 100, 60, 0),
        (1, 100, 60, 1),
        (100, 100, 60, 1),
        (101, 100, 60, 2),
        (1000, 100, 60, 10),
        (5, 1, 10, 5),
    ],
)
def test_new_events_fill_batches_spread_over_one_interval(
    count: int, batch_size: int, interval: float, expected_batches: int
) -> None:
    result = plan(dict.fromkeys(ids("E", count), interval), size=batch_size)
    assert set(result.assign) == set(ids("E", count))
    assert len(result.created) == expected_batches
    sizes = [list(result.assign.values()).count(b) for b in result.created]
    assert all(size <= batch_size for size in sizes)
    dues = sorted(due for _, due in result.created.values())
    assert all(NOW <= due < NOW + interval for due in dues)
    if len(dues) > 1:
        assert {round(b - a, 9) for a, b in pairwise(dues)} == {round(interval / len(dues), 9)}


def test_intervals_never_share_a_batch() -> None:
    result = plan({**dict.fromkeys(ids("A", 3), 30.0), **dict.fromkeys(ids("B", 3), 60.0)})
    by_batch: dict[str, set[float]] = {}
    for event_id, batch_id in result.assign.items():
        by_batch.setdefault(batch_id, set()).add(30.0 if event_id.startswith("A") else 60.0)
    assert len(by_batch) == 2
    assert all(len(intervals) == 1 for intervals in by_batch.values())


def test_sources_and_regions_never_share_a_batch() -> None:
    partitions = ["", "ticketmaster/US", "ticketmaster/GB", "tmr/US", "ticketweb/"]
    wanted = {f"E{i}": BatchKey(60.0, partitions[i % len(partitions)]) for i in range(50)}
    result = plan(wanted, size=100)
    assert len(result.created) == len(partitions)
    for batch_id, (key, _) in result.created.items():
        members = [e for e, b in result.assign.items() if b == batch_id]
        assert {wanted[e] for e in members} == {key}


def test_events_stay_put_and_newcomers_fill_room_first() -> None:
    existing = {"old": Batch("old", BatchKey(60.0), NOW + 5, frozenset(ids("E", 3)))}
    wanted = dict.fromkeys([*ids("E", 3), "NEW1", "NEW2"], 60.0)
    result = plan(wanted, existing, size=4)
    assert result.assign == {"NEW1": "old", "NEW2": "b0"}
    assert result.created == {"b0": (BatchKey(60.0), NOW)}
    assert result.rescheduled == {"old": NOW}, "a new watch's first reading comes at once"
    assert result.dropped == set()


def test_an_event_moving_between_batches_keeps_to_the_schedule() -> None:
    existing = {
        "slow": Batch("slow", BatchKey(60.0), NOW + 5, frozenset({"E1", "E2"})),
        "fast": Batch("fast", BatchKey(30.0), NOW + 7, frozenset({"E3"})),
    }
    result = plan({"E1": 60.0, "E2": 30.0, "E3": 30.0}, existing, size=4)
    assert result.assign == {"E2": "fast"}
    assert result.rescheduled == {}, "not a new watch: no early poll"


def test_changed_interval_moves_the_event_and_empty_batches_go() -> None:
    existing = {"old": Batch("old", BatchKey(60.0), NOW + 5, frozenset({"E1"}))}
    result = plan({"E1": 30.0}, existing)
    assert result.assign == {"E1": "b0"}
    assert result.dropped == {"old"}


def test_overdue_batches_are_spread_again_after_downtime() -> None:
    existing = {
        f"b{i}": Batch(f"b{i}", BatchKey(60.0), NOW - 1000 + i, frozenset({f"E{i}"}))
        for i in range(3)
    }
    result = plan({f"E{i}": 60.0 for i in range(3)}, existing)
    assert result.rescheduled == {"b0": NOW, "b1": NOW + 20, "b2": NOW + 40}


def test_batches_overdue_by_less_than_an_interval_stay_due_after_a_restart() -> None:
    existing = {
        f"b{i}": Batch(f"b{i}", BatchKey(60.0), NOW - 50 + i, frozenset({f"E{i}"}))
        for i in range(3)
    }
    result = plan({f"E{i}": 60.0 for i in range(3)}, existing)
    assert result.rescheduled == {}, "polled now, the most overdue first"


def test_a_smaller_batch_size_splits_big_batches() -> None:
    existing = {"big": Batch("big", BatchKey(60.0), NOW + 1, frozenset(ids("E", 5)))}
    result = plan(dict.fromkeys(ids("E", 5), 60.0), existing, size=2)
    assert len(result.assign) == 3, "two stay, three move"
    assert set(result.created) == set(result.assign.values())
    assert sorted(sizes(existing, result).values()) == [1, 2, 2]


def sizes(existing: dict[str, Batch], result: BatchPlan) -> dict[str, int]:
    """How many members every batch has once the plan is applied."""
    membership = {e: b.id for b in existing.values() for e in b.members} | result.assign
    counts: dict[str, int] = {}
    for batch_id in membership.values():
        counts[batch_id] = counts.get(batch_id, 0) + 1
    return counts


@given(
    st.dictionaries(
        st.text("ABCDEFGH", min_size=1, max_size=3),
        st.tuples(st.sampled_from([30.0, 60.0]), st.sampled_from(["", "tmr/US"])),
        max_size=60,
    ),
    st.integers(min_value=1, max_value=7),
    st.integers(min_value=1, max_value=7),
)
def test_no_plan_puts_more_than_batch_size_events_or_two_keys_in_a_batch(
    wanted: dict[str, tuple[float, str]], before: int, after: int
) -> None:
    keys = {e: BatchKey(*k) for e, k in wanted.items()}
    first = plan(keys, size=before)
    existing = {
        batch_id: Batch(
            batch_id, key, due, frozenset(e for e, b in first.assign.items() if b == batch_id)
        )
        for batch_id, (key, due) in first.created.items()
    }
    second = plan_batches(keys, existing, after, NOW, iter(f"n{i}" for i in range(999)).__next__)
    counts = sizes(existing, second)
    dropped = second.dropped
    assert all(count <= after for batch_id, count in counts.items() if batch_id not in dropped)
    membership = {e: b.id for b in existing.values() for e in b.members} | second.assign
    key_of = {b.id: b.key for b in existing.values()} | {
        b: key for b, (key, _) in second.created.items()
    }
    assert all(key_of[batch_id] == keys[e] for e, batch_id in membership.items())


def test_spread() -> None:
    assert spread(4, 60.0, 0.0) == [0.0, 15.0, 30.0, 45.0]


@pytest.mark.parametrize(
    ("interval", "tick"), [(3600, 5.0), (60, 5.0), (4, 4.0), (1, 1.0), (0.01, 0.05)]
)
def test_tick_for(interval: float, tick: float) -> None:
    assert tick_for(interval) == tick


@pytest.mark.parametrize(
    ("interval", "gather"), [(3600, 2.5), (10, 2.5), (4, 1.0), (1, 0.25), (0.2, 0.05)]
)
def test_gather_for(interval: float, gather: float) -> None:
    """A wake never waits so long for more batches that the fastest event misses a poll."""
    assert gather_for(interval) == gather
