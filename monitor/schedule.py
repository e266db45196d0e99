"""Every periodic job of the daemon on one mechanism: the poll tick, the housekeeping jobs,
the configuration file's watcher. Each runs every so many seconds, one run at a time, on the
beat the others share (see `times.to_next_beat`); a failed run is logged and the job runs
again at its next beat.

Time is passed in (`Time`): the daemon runs on the system's, and tests on a clock they move,
so that "nothing ran" is asserted of a time they control rather than slept through.

This replaces APScheduler, which ran the poll tick alone beside a loop of our own for the
other jobs. Its scheduler reads the wall clock and the event loop's timers itself, so its
jobs could be tested only by sleeping, and none of them needs more of it than what is here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from monitor.tasks import finish
from monitor.times import to_next_beat

logger = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class Time(Protocol):
    """What time it is (epoch seconds), and a wait of so many seconds of it."""

    def __call__(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemTime:
    def __call__(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_TIME = SystemTime()


class Periodic:
    """One job of the schedule: `job` every `every` seconds, on the beat."""

    def __init__(self, name: str, every: float, job: Job, time_: Time) -> None:
        self.name = name
        self._every = every
        self._job = job
        self._time = time_
        self._task: asyncio.Task[None] | None = None
        self.runs = 0
        """How many runs have ended, failed or not: what a look at the job can wait for."""

    @property
    def every(self) -> float:
        return self._every

    def set_every(self, every: float) -> None:
        """From its next beat on, the job runs every `every` seconds."""
        if every == self._every:
            return
        self._every = every
        if self._task is not None:
            self._task.cancel()
            self.start()

    def start(self) -> None:
        """The schedule's: the job runs from its next beat on."""
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def _loop(self) -> None:
        while True:
            await self._time.sleep(to_next_beat(self._every, self._time()))
            try:
                await self._job()
            except Exception:
                logger.exception("%s failed; it runs again at its next beat", self.name)
            self.runs += 1

    async def stop(self) -> None:
        """The schedule's: the job runs no more."""
        if self._task is not None:
            await finish(self._task)
            self._task = None


class Schedule:
    """The daemon's periodic jobs. Jobs added before `start` begin with it; those added
    after, at once. `stop` ends them all, a run in progress cancelled."""

    def __init__(self, time_: Time = SYSTEM_TIME) -> None:
        self.time = time_
        self._jobs: list[Periodic] = []
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def every(self, name: str, seconds: float, job: Job) -> Periodic:
        periodic = Periodic(name, seconds, job, self.time)
        self._jobs.append(periodic)
        if self._running:
            periodic.start()
        return periodic

    def job(self, name: str) -> Periodic:
        """The job of that name."""
        return next(periodic for periodic in self._jobs if periodic.name == name)

    def start(self) -> None:
        self._running = True
        for periodic in self._jobs:
            periodic.start()

    async def __aenter__(self) -> Schedule:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        self._running = False
        for periodic in self._jobs:
            await periodic.stop()
