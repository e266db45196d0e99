from __future__ import annotations

from itertools import pairwise

import pytest

from monitor.schedule import spread_due_times
from monitor.scheduler import tick_for


@pytest.mark.parametrize(
    ("count", "batch_size", "interval", "distinct_due_times"),
    [
        (0, 100, 60, 0),
        (1, 100, 60, 1),
        (10, 100, 60, 1),
        (100, 100, 60, 1),
        (101, 100, 60, 2),
        (1000, 100, 60, 10),
        (5, 1, 10, 5),
    ],
)
def test_spread_keeps_batches_full(
    count: int, batch_size: int, interval: float, distinct_due_times: int
) -> None:
    ids = [f"E{i}" for i in range(count)]
    due = spread_due_times(ids, interval, batch_size, start=1000.0)
    assert set(due) == set(ids)
    slots = sorted(set(due.values()))
    assert len(slots) == distinct_due_times
    assert all(1000.0 <= at < 1000.0 + interval for at in slots)
    for slot in slots:
        assert sum(1 for at in due.values() if at == slot) <= batch_size
    if len(slots) > 1:
        gaps = {round(b - a, 9) for a, b in pairwise(slots)}
        assert gaps == {round(interval / len(slots), 9)}


@pytest.mark.parametrize(
    ("interval", "tick"), [(60, 1.0), (4, 1.0), (2, 0.5), (1, 0.25), (0.1, 0.05)]
)
def test_tick_for(interval: float, tick: float) -> None:
    assert tick_for(interval) == tick
