"""Requests with room take other batches along: which ones, and that nobody waits longer."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.devtools.faults import ScriptedFault
from monitor.polling.watchlist import Watch
from monitor.store.batching import Claimable, assemble
from monitor.store.records import ClaimedBatch
from monitor.upstream.sizing import RequestSize
from tests.rig import RigBuilder


def unit(
    name: str, size: int, due: float = 0.0, partition: str = "", failures: int = 0
) -> Claimable:
    return Claimable(name, partition, size, due, failures)


def names(requests: list[list[Claimable]]) -> list[list[str]]:
    return [[batch.id for batch in request] for request in requests]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("due", "waiting", "capacity", "limit", "expected"),
    [
        pytest.param([unit("a", 10)], [], 100, 4, [["a"]], id="alone when nothing waits"),
        pytest.param(
            [unit("a", 10)],
            [unit("b", 50, 20), unit("c", 50, 10), unit("d", 30, 5)],
            100,
            4,
            [["a", "d", "c"]],
            id="the soonest due first, while they fit",
        ),
        pytest.param(
            [unit("a", 60)],
            [unit("b", 50, 5), unit("c", 40, 10)],
            100,
            4,
            [["a", "c"]],
            id="one too large is passed over for a later one that fits",
        ),
        pytest.param(
            [unit("a", 40), unit("b", 40), unit("c", 40)],
            [],
            100,
            4,
            [["a", "b", "c"]],
            id="a partition's due batches go together, to be cut at 100 IDs",
        ),
        pytest.param(
            [unit("a", 10, partition="US")],
            [unit("b", 10, 5, partition="GB"), unit("c", 10, 6, partition="US")],
            100,
            4,
            [["a", "c"]],
            id="never another source or region",
        ),
        pytest.param(
            [unit("a", 10), unit("b", 10, partition="GB")],
            [],
            100,
            4,
            [["a"], ["b"]],
            id="due batches of two regions go apart",
        ),
        pytest.param(
            [unit("a", 10, failures=2)],
            [unit("b", 10, 5)],
            100,
            4,
            [["a"]],
            id="a failing batch goes alone",
        ),
        pytest.param(
            [unit("a", 10)],
            [unit("b", 10, 5, failures=1)],
            100,
            4,
            [["a"]],
            id="a batch backing off never rides",
        ),
        pytest.param(
            [unit("a", 100), unit("b", 100), unit("c", 100)],
            [],
            100,
            2,
            [["a", "b"]],
            id="beyond the limit, due batches wait for the next round",
        ),
        pytest.param(
            [unit("a", 60), unit("b", 60), unit("c", 60)],
            [],
            100,
            1,
            [["a"]],
            id="the limit counts requests of IDs, not batches",
        ),
        pytest.param(
            [unit("a", 150)],
            [unit("b", 10, 5), unit("c", 60, 6)],
            100,
            4,
            [["a", "b"]],
            id="a batch larger than a request goes in two, and the second's room is filled",
        ),
        pytest.param(
            [unit("a", 100), unit("b", 100, failures=1), unit("c", 50)],
            [unit("d", 50, 5)],
            262,
            4,
            [["a", "c", "d"], ["b"]],
            id="262 IDs a request: three batches and a rider in one, the failing one alone",
        ),
    ],
)
def test_assemble(
    due: list[Claimable],
    waiting: list[Claimable],
    capacity: int,
    limit: int,
    expected: list[list[str]],
) -> None:
    assert names(assemble(due, waiting, capacity, limit)) == expected


@st.composite
def watchlists(draw: st.DrawFn) -> list[tuple[float, int, str]]:
    """Batches as (interval, size, partition)."""
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from([10.0, 20.0, 30.0, 45.0, 60.0]),
                st.integers(1, 100),
                st.sampled_from(["US", "GB"]),
            ),
            min_size=1,
            max_size=25,
        )
    )


def play(
    batches: list[tuple[float, int, str]], capacity: int, offset: float, tick: float
) -> tuple[int, list[list[float]]]:
    """The daemon's rules, played tick by tick for five minutes: claim what is due plus
    riders, and each batch taken is due again by `ClaimedBatch.next_due`. Returns the
    requests made (a group costs its IDs over `capacity`, rounded up; with no capacity,
    every due batch goes alone) and when each batch was polled."""
    due_at = [offset * interval for interval, _, _ in batches]
    polled_at: list[list[float]] = [[] for _ in batches]
    requests = 0
    for step in range(int(300 / tick) + 1):
        now = step * tick
        claimable = [
            Claimable(str(i), partition, size, due_at[i])
            for i, (_, size, partition) in enumerate(batches)
        ]
        due = sorted((b for b in claimable if b.next_due_at <= now), key=lambda b: b.next_due_at)
        if not due:
            continue
        waiting = sorted((b for b in claimable if b.next_due_at > now), key=lambda b: b.next_due_at)
        groups = (
            assemble(due, waiting, capacity, limit=len(claimable) * 100)
            if capacity
            else [[batch] for batch in due]
        )
        for request in groups:
            requests += -(-sum(b.size for b in request) // capacity) if capacity else 1
            for batch in request:
                index = int(batch.id)
                polled_at[index].append(now)
                claimed = ClaimedBatch(
                    batch.id,
                    batches[index][0],
                    None,
                    0,
                    due_at=batch.next_due_at if batch.next_due_at <= now else None,
                )
                due_at[index] = claimed.next_due(now)
    return requests, polled_at


@pytest.mark.unit
@settings(max_examples=150, deadline=None)
@given(watchlists(), st.sampled_from([100, 200, 500, 1000]), st.floats(0.0, 1.0))
def test_nobody_waits_longer_than_their_interval_and_requests_are_fewer(
    batches: list[tuple[float, int, str]], capacity: int, offset: float
) -> None:
    tick = 1.0
    requests, polled_at = play(batches, capacity, offset, tick)
    for (interval, _, _), times in zip(batches, polled_at, strict=True):
        assert times, "every batch is polled"
        assert times[0] <= offset * interval + tick
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap <= interval + tick for gap in gaps), (interval, gaps)
    alone, _ = play(batches, 0, offset, tick)  # no room: every batch in a request of its own
    assert requests <= alone


async def test_a_longer_interval_rides_in_a_shorter_ones_request(rig: RigBuilder) -> None:
    fast = {f"F{i}": Watch(f"F{i}", None, 10.0) for i in range(10)}
    slow = {f"S{i}": Watch(f"S{i}", None, 20.0) for i in range(10)}
    r = await rig(watches=fast | slow, batch_size=10, size=RequestSize.of(20, 8000))
    start = r.clock.now
    await r.poller.run_cycle()
    assert r.simulator.requests == 1, "both due: one request of 20"
    r.clock.advance(10.0)
    await r.poller.run_cycle()
    assert r.simulator.requests == 2, "the slow batch rides along with the fast one"
    due = await r.due_times()
    assert due["F0"] == start + 20.0
    assert due["S0"] == start + 30.0, "it counts as polled, so it is due an interval later"
    r.clock.advance(10.0)
    await r.poller.run_cycle()
    assert r.simulator.requests == 3, "20 events every 10 s cost one request each time"


async def test_a_rider_gets_its_own_time_back_when_the_request_fails(rig: RigBuilder) -> None:
    fast = {"F": Watch("F", None, 10.0)}
    slow = {"S": Watch("S", None, 60.0)}
    r = await rig(watches=fast | slow, batch_size=1, size=RequestSize.of(2, 8000))
    start = r.clock.now
    await r.poller.run_cycle()
    r.clock.advance(10.0)
    r.simulator.inject(ScriptedFault(503), times=1)
    await r.poller.run_cycle()
    due = await r.due_times()
    assert due["S"] == start + 60.0, "not due, not failed: its schedule stands"
    assert start + 10.0 < due["F"] <= start + 10.0 + 2.0, "the due batch backs off"
    assert await r.reads.event_row("S") is not None


@pytest.mark.unit
@pytest.mark.parametrize(
    ("due_at", "polled_at", "expected"),
    [
        pytest.param(100.0, 100.0, 110.0, id="on time"),
        pytest.param(100.0, 100.3, 110.0, id="a little late: lateness does not add up"),
        pytest.param(100.0, 109.9, 110.0, id="late by almost an interval: the next slot"),
        pytest.param(100.0, 125.0, 130.0, id="late by slots: the next one, no catching up"),
        pytest.param(None, 97.0, 107.0, id="rode along: an interval after this poll"),
    ],
)
def test_next_due(due_at: float | None, polled_at: float, expected: float) -> None:
    batch = ClaimedBatch("b", 10.0, None, 0, due_at=due_at)
    assert batch.next_due(polled_at) == pytest.approx(expected)
