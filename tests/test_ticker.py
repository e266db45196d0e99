"""The ticker wakes when the next batch is due, not on the next tick."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from monitor.polling import ticker as ticker_module
from monitor.polling.poller import CycleStats
from monitor.polling.ticker import PollTicker
from tests.support import eventually


@pytest.fixture(autouse=True)
def first_tick_a_period_away(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ticks fall on the clock's beat: one due a few milliseconds after the start (1 run in
    100 or so, with a 30 s period) would be a cycle these tests do not expect. The first
    tick comes a whole period after the start here."""
    monkeypatch.setattr(
        ticker_module,
        "_next_beat",
        lambda every: datetime.now(UTC) + timedelta(seconds=every),
    )


class Schedule:
    """A poller whose next due time and requests the test decides."""

    def __init__(self, due_in: float | None, requests: int = 1) -> None:
        self.due_in = due_in
        self.requests = requests
        self.cycles: list[float] = []

    @property
    def clock(self) -> Callable[[], float]:
        return time.time

    async def run_cycle(self) -> CycleStats:
        self.cycles.append(time.monotonic())
        return CycleStats(requests=self.requests)

    async def next_due(self) -> float | None:
        return None if self.due_in is None else time.time() + self.due_in

    @property
    def shortest_interval(self) -> float:
        return 0.2  # a wake gathers for 0.05 s


async def test_a_batch_due_before_the_next_tick_is_polled_when_due() -> None:
    schedule = Schedule(due_in=0.1)
    ticker = PollTicker(schedule, every=30.0)
    ticker.start()
    try:
        await eventually(lambda: len(schedule.cycles) >= 3, within=2.0)
    finally:
        await ticker.stop(1.0)
    gaps = [b - a for a, b in zip(schedule.cycles, schedule.cycles[1:], strict=False)]
    assert all(0.08 <= gap < 0.5 for gap in gaps[:2]), gaps


async def test_due_work_that_could_not_be_polled_waits_for_the_tick() -> None:
    schedule = Schedule(due_in=-1.0, requests=0)  # e.g. requests held for the quota
    ticker = PollTicker(schedule, every=30.0)
    ticker.start()
    try:
        await asyncio.sleep(0.3)
    finally:
        await ticker.stop(1.0)
    assert len(schedule.cycles) == 1, "no cycle after cycle on the spot"


async def test_nothing_due_soon_runs_no_cycle_until_it_is_due() -> None:
    schedule = Schedule(due_in=60.0)
    ticker = PollTicker(schedule, every=30.0)
    ticker.start()
    try:
        await asyncio.sleep(0.3)
    finally:
        await ticker.stop(1.0)
    assert len(schedule.cycles) == 1
