"""The schedule runs each periodic job on its beat, and the ticker polls when the next batch
is due rather than at the next tick; on a clock the tests move."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from monitor.polling.poller import CycleStats
from monitor.polling.ticker import PollTicker
from monitor.schedule import Schedule
from tests.support import ManualTime

pytestmark = pytest.mark.unit

START = 1_800_000_000.0  # a whole multiple of every period used here


class Poller:
    """A poller whose next due time and requests the test decides."""

    def __init__(self, time_: ManualTime, due_in: float | None, requests: int = 1) -> None:
        self._time = time_
        self.due_in = due_in
        self.requests = requests
        self.cycles: list[float] = []

    @property
    def clock(self) -> Callable[[], float]:
        return self._time

    async def run_cycle(self) -> CycleStats:
        self.cycles.append(self._time())
        return CycleStats(requests=self.requests)

    async def next_due(self) -> float | None:
        return None if self.due_in is None else self._time() + self.due_in

    @property
    def shortest_interval(self) -> float:
        return 0.2  # a wake gathers for 0.05 s


async def test_jobs_run_on_their_beats_and_a_failure_does_not_stop_them() -> None:
    time_ = ManualTime(START)
    schedule = Schedule(time_)
    runs: dict[str, list[float]] = {"fast": [], "slow": [], "failing": []}

    def job(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            runs[name].append(time_() - START)
            if name == "failing":
                raise RuntimeError("boom")

        return run

    schedule.every("fast", 2.5, job("fast"))
    schedule.every("slow", 10.0, job("slow"))
    schedule.start()
    late = schedule.every("failing", 5.0, job("failing"))
    await time_.run_for(20.0)
    assert runs["fast"] == [2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0]
    assert runs["slow"] == [10.0, 20.0], "on the same beats as the others"
    assert runs["failing"] == [5.0, 10.0, 15.0, 20.0], "a failed run is tried at the next beat"

    late.set_every(10.0)
    await time_.run_for(20.0)
    assert runs["failing"][4:] == [30.0, 40.0]
    await schedule.stop()
    await time_.run_for(60.0)
    assert runs["fast"][-1] == 40.0, "nothing runs after stop"


async def test_a_batch_due_before_the_next_tick_is_polled_when_due() -> None:
    time_ = ManualTime(START)
    schedule = Schedule(time_)
    poller = Poller(time_, due_in=0.1)
    ticker = PollTicker(poller, schedule, every=30.0)
    schedule.start()
    ticker.start()
    await time_.run_for(1.0)
    await ticker.stop(1.0)
    await schedule.stop()
    gaps = [round(b - a, 3) for a, b in zip(poller.cycles, poller.cycles[1:], strict=False)]
    assert gaps[:3] == [0.15, 0.15, 0.15], "due in 0.1 s, gathering 0.05 s more"


async def test_due_work_that_could_not_be_polled_waits_for_the_tick() -> None:
    time_ = ManualTime(START)
    schedule = Schedule(time_)
    poller = Poller(time_, due_in=-1.0, requests=0)  # e.g. requests held for the quota
    ticker = PollTicker(poller, schedule, every=30.0)
    schedule.start()
    ticker.start()
    await time_.run_for(29.0)
    assert poller.cycles == [START], "no cycle after cycle on the spot"
    await time_.run_for(1.0)
    assert poller.cycles == [START, START + 30.0], "the tick tries again"
    await ticker.stop(1.0)
    await schedule.stop()


async def test_nothing_due_soon_runs_no_cycle_until_it_is_due() -> None:
    time_ = ManualTime(START)
    schedule = Schedule(time_)
    poller = Poller(time_, due_in=45.0)
    ticker = PollTicker(poller, schedule, every=60.0)
    schedule.start()
    ticker.start()
    await time_.run_for(45.0)
    assert poller.cycles == [START]
    await time_.run_for(0.05)
    assert poller.cycles == [START, START + 45.05], "woken when due, not at the tick"
    ticker.set_every(10.0)
    poller.due_in = None
    await time_.run_for(20.0)
    assert poller.cycles[2:] == [START + 50.0, START + 60.0], "the new period's beats"
    await ticker.stop(1.0)
    await schedule.stop()
