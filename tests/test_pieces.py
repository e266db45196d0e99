"""Requests filled ID by ID: a claim's batches laid end to end and cut at the request size,
a batch carried in parts recorded once as one poll, and a failed part failing its batch."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from monitor.devtools.faults import ScriptedFault
from monitor.models import EventState
from monitor.polling.pieces import Joins, Part, cut
from monitor.polling.watchlist import Watch
from monitor.store.records import ClaimedBatch
from monitor.store.tables import changes
from monitor.upstream.sizing import RequestSize
from tests.rig import RigBuilder
from tests.support import RN, A, F

STATE = EventState(None, 0, None, False)


def batch(
    name: str, size: int, *, partition: str = "", failures: int = 0
) -> tuple[ClaimedBatch, dict[str, EventState]]:
    claimed = ClaimedBatch(name, 10.0, None, 1, failures, partition=partition)
    return claimed, {f"{name}-{i}": STATE for i in range(size)}


def shape(pieces: list[list[Part]]) -> list[list[tuple[str, int, bool]]]:
    return [[(p.batch.id, len(p.members), p.whole) for p in piece] for piece in pieces]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("requests", "size", "expected"),
    [
        pytest.param(
            [[batch("a", 100), batch("b", 100)], [batch("c", 100), batch("d", 100)]],
            262,
            [
                [("a", 100, True), ("b", 100, True), ("c", 62, False)],
                [("c", 38, False), ("d", 100, True)],
            ],
            id="four batches in two requests of 262, not three of 200",
        ),
        pytest.param(
            [[batch("a", 100)], [batch("b", 100)]],
            200,
            [[("a", 100, True), ("b", 100, True)]],
            id="a size that whole batches fill: as claimed",
        ),
        pytest.param(
            [[batch("a", 100)], [batch("b", 100, failures=2)], [batch("c", 50)]],
            262,
            [[("b", 100, True)], [("a", 100, True), ("c", 50, True)]],
            id="a batch with failed polls behind it goes alone",
        ),
        pytest.param(
            [
                [batch("a", 100, partition="/GB")],
                [batch("b", 100)],
                [batch("c", 100, partition="/GB")],
            ],
            150,
            [
                [("a", 100, True), ("c", 50, False)],
                [("c", 50, False)],
                [("b", 100, True)],
            ],
            id="never two partitions in one request",
        ),
        pytest.param(
            [[batch("a", 100)]],
            40,
            [[("a", 40, False)], [("a", 40, False)], [("a", 20, False)]],
            id="a size under a batch's: the batch in three parts",
        ),
    ],
)
def test_cut(
    requests: list[list[tuple[ClaimedBatch, dict[str, EventState]]]],
    size: int,
    expected: list[list[tuple[str, int, bool]]],
) -> None:
    pieces = cut(requests, size)
    assert shape(pieces) == expected
    carried = [event_id for piece in pieces for part in piece for event_id in part.members]
    claimed = [event_id for request in requests for _, members in request for event_id in members]
    assert sorted(carried) == sorted(claimed), "every event asked for once"


@pytest.mark.unit
def test_a_batch_in_parts_is_settled_once_when_its_last_part_is_in() -> None:
    pieces = cut([[batch("a", 100)]], 40)
    joins = Joins.of(pieces)
    first, second, third = (piece[0] for piece in pieces)
    assert joins.answered(first, {"a-0": {"status": "x"}}) is None
    failure = RuntimeError("a request failed")
    assert joins.failed(second, failure) is None
    assert joins.answered(third, {"a-99": {"status": "y"}}) is failure, "one part failed: all"
    pieces = cut([[batch("b", 50)]], 40)
    joins = Joins.of(pieces)
    one, other = (piece[0] for piece in pieces)
    assert joins.answered(one, {"b-0": {"s": 1}}) is None
    assert joins.answered(other, {"b-49": {"s": 2}, "b-0": {"s": 9}}) == {
        "b-0": {"s": 1},
        "b-49": {"s": 2},
    }, "each part's own answers"


async def test_requests_are_filled_id_by_id_and_a_failed_one_fails_only_its_batches(
    rig: RigBuilder,
) -> None:
    ids = [f"E{i:04d}" for i in range(1000)]
    watches = {i: Watch(i, None, 10.0) for i in ids}
    r = await rig(watches=watches, batch_size=100, max_in_flight=1, size=RequestSize(262))
    for event_id in ids:
        r.simulator.set(event_id, A, RN)
    await r.poller.run_cycle()
    assert r.simulator.requests == 4, "1,000 IDs in requests of 262, not 5 of 200"
    assert len(r.simulator.polled_at) == 1000

    for event_id in ids:
        r.simulator.set(event_id, F, RN)
    r.simulator.inject(ScriptedFault(status=503, body="<html>busy</html>"))
    r.clock.advance(10.0)
    await r.poller.run_cycle()
    async with r.engine.connect() as connection:
        changed = set((await connection.scalars(select(changes.c.event_id))).all())
    # The first request failed: the batches it carried whole and the one it carried a part
    # of wait for their retry (three batches of 100); every other event's change is stored.
    waiting = sorted(set(ids) - changed)
    assert len(waiting) == 300
    blocks = {int(event_id[1:]) // 100 for event_id in waiting}
    assert len(blocks) == 3, "whole batches, never part of one"
