"""APScheduler wiring: the periodic poll tick, and nothing else.

The database knows when each event is due; the tick only asks it often enough. A tick that
finds the previous cycle still running does nothing, so cycles never overlap.
"""

from __future__ import annotations

import asyncio
import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.polling.poller import Poller
from monitor.tasks import finish

logger = logging.getLogger(__name__)


def tick_for(shortest_interval: float) -> float:
    """Tick often enough that a due event waits at most a quarter interval, at most 1s."""
    return max(0.05, min(1.0, shortest_interval / 4))


class PollTicker:
    def __init__(self, poller: Poller, every: float) -> None:
        self._poller = poller
        self._every = every
        self._scheduler = AsyncIOScheduler()
        self._cycle: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        self._scheduler.add_job(
            self._tick,
            "interval",
            seconds=self._every,
            id="poll",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self._scheduler.start()
        self._start_cycle()

    def set_every(self, every: float) -> None:
        if every != self._every and self._scheduler.running:
            self._scheduler.reschedule_job("poll", trigger="interval", seconds=every)
        self._every = every

    def running(self) -> bool:
        return bool(self._scheduler.running)

    async def stop(self, grace: float) -> None:
        """No new cycles; let the running one finish within `grace`, then cancel it."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
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

    def _start_cycle(self) -> None:
        if self._cycle is None or self._cycle.done():
            self._cycle = asyncio.create_task(self._run_cycle(), name="poll-cycle")

    async def _run_cycle(self) -> None:
        try:
            await self._poller.run_cycle()
        except Exception:
            if not self._failing:
                logger.exception("a poll cycle failed; trying again on the next tick")
            self._failing = True
        else:
            if self._failing:
                logger.info("poll cycles work again")
            self._failing = False
