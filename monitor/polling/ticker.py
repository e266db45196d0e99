"""When poll cycles run: at the next due time, and on APScheduler's periodic tick.

The database knows when each batch is due. After each cycle the ticker asks the poller when
the next batch is due, or when held requests may go out again, and wakes then, so a batch
is polled when it is due, not up to a tick later. The periodic tick only catches what the
wake cannot know of (another replica's writes, a claim that found nothing it could take),
so it is rare: a tick costs about as much as a request's whole bookkeeping. A wake or tick
that finds a cycle running does nothing, so cycles never overlap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.exc import SQLAlchemyError

from monitor.polling.poller import CycleStats
from monitor.tasks import finish
from monitor.times import to_next_beat

logger = logging.getLogger(__name__)


MIN_WAKE = 0.002
"""Seconds: the soonest a wake follows a cycle."""
GATHER = 2.5
"""Seconds at the most, and a quarter of the shortest interval: how long a wake waits past a
due time for the batches due just after it, so that one claim and one write serve many
requests. Batches keep their due times, so the wait shifts a batch's polls by about the same
moment every round, not its interval. At 10,000 events every 10 s it makes each wake send
three full requests instead of one, and the process spends about a third less CPU: a wake
costs more than the requests it sends."""


def gather_for(shortest_interval: float) -> float:
    """How long a wake gathers when the fastest event is polled every `shortest_interval`."""
    return min(GATHER, shortest_interval / 4)


TICK_AT_MOST = 5.0
"""Seconds between ticks at the most: what no wake knows of waits no longer."""


def tick_for(shortest_interval: float) -> float:
    """A due batch no wake knows of waits at most one interval, and at most `TICK_AT_MOST`."""
    return max(0.05, min(TICK_AT_MOST, shortest_interval))


def _next_beat(every: float) -> datetime:
    """Ticks fall on the beat the housekeeping jobs share (see `to_next_beat`)."""
    now = time.time()
    return datetime.fromtimestamp(now + to_next_beat(every, now), UTC)


class Cycles(Protocol):
    """What the ticker drives: the poller."""

    @property
    def clock(self) -> Callable[[], float]: ...

    async def run_cycle(self) -> CycleStats: ...

    async def next_due(self) -> float | None: ...

    @property
    def shortest_interval(self) -> float: ...


class PollTicker:
    def __init__(
        self,
        poller: Cycles,
        every: float,
    ) -> None:
        self._poller = poller
        self._every = every
        self._scheduler = AsyncIOScheduler()
        self._cycle: asyncio.Task[None] | None = None
        self._wake: asyncio.TimerHandle | None = None
        self._failing = False
        self.storage_failures = 0
        """Cycles in a row whose claim or write the database refused (readiness reads it)."""

    def start(self) -> None:
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=self._every,
            start_date=_next_beat(self._every),
            id="poll",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self._scheduler.start()
        self._start_cycle()

    @property
    def every(self) -> float:
        """Seconds between ticks: the longest a due event waits for its poll."""
        return self._every

    def set_every(self, every: float) -> None:
        if every != self._every and self._scheduler.running:
            self._scheduler.reschedule_job(
                "poll", trigger="interval", seconds=every, start_date=_next_beat(every)
            )
        self._every = every

    def running(self) -> bool:
        return bool(self._scheduler.running)

    async def stop(self, grace: float) -> None:
        """No new cycles; let the running one finish within `grace`, then cancel it."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self._wake is not None:
            self._wake.cancel()
        cycle = self._cycle
        if cycle is None or cycle.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(cycle), grace)
        except TimeoutError:
            logger.warning("the running poll did not finish within %.0fs; abandoning it", grace)
            await finish(cycle)

    async def _tick(self) -> None:
        # Runs on the event loop (APScheduler awaits coroutine jobs there) and returns at once,
        # so a long cycle never makes the scheduler skip and warn.
        self._start_cycle()

    def poke(self) -> None:
        """Run a cycle now (unless one runs): a batch was just made due in this process."""
        if self._scheduler.running:
            self._start_cycle()

    def _start_cycle(self) -> None:
        if self._cycle is None or self._cycle.done():
            self._cycle = asyncio.create_task(self._run_cycle(), name="poll-cycle")

    async def _run_cycle(self) -> None:
        try:
            stats = await self._poller.run_cycle()
            due = await self._poller.next_due()
        except Exception as exc:
            if not self._failing:
                logger.exception("a poll cycle failed; trying again on the next tick")
            self._failing = True
            if isinstance(exc, SQLAlchemyError | OSError):
                self.storage_failures += 1
            return
        if self._failing:
            logger.info("poll cycles work again")
        self._failing = False
        self.storage_failures = 0
        self._wake_at(due, polled=stats.requests > 0)

    def _wake_at(self, due: float | None, *, polled: bool) -> None:
        """Run the next cycle when the next batch is due (or held requests may go out).
        What is due now but was not polled waits for the tick."""
        if due is None or not self._scheduler.running:
            return
        delay = due - self._poller.clock()
        if delay <= 0 and not polled:
            return
        if self._wake is not None:
            self._wake.cancel()
        loop = asyncio.get_running_loop()
        self._wake = loop.call_later(
            max(MIN_WAKE, delay + gather_for(self._poller.shortest_interval)),
            self._start_cycle,
        )
