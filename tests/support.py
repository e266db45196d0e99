"""Helpers shared by the tests: status aliases, waiting for something real, free ports."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import inspect
import socket
import time
from collections.abc import Awaitable, Callable, Collection, Iterator

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.models import Delivery, Notice, ResaleStatus, Status

A, F, N, U = (
    Status.TICKETS_AVAILABLE,
    Status.FEW_TICKETS_LEFT,
    Status.TICKETS_NOT_AVAILABLE,
    Status.UNKNOWN,
)
RA, RN, RU = (
    ResaleStatus.TICKETS_AVAILABLE,
    ResaleStatus.TICKETS_NOT_AVAILABLE,
    ResaleStatus.UNKNOWN,
)


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], within: float = 5.0, what: str = ""
) -> None:
    """Wait for something another task or process does, in small real steps, bounded."""
    deadline = time.monotonic() + within
    while True:
        met = condition()
        if inspect.isawaitable(met):
            met = await met
        if met:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.05)


async def all_sent(engine: AsyncEngine, *, held: Collection[str] = ()) -> None:
    """Wait until every delivery is delivered, dead or superseded, but those of the
    notifiers `held` (a snooze or quiet hours keep theirs pending). Deliveries are stored
    with their change, so from then on nothing goes out before time passes: a test may
    assert what was not sent without sleeping first."""
    from monitor.store.tables import deliveries

    async def settled() -> bool:
        query = select(deliveries.c.notifier).where(deliveries.c.state == "pending")
        async with engine.connect() as conn:
            pending = (await conn.scalars(query)).all()
        return all(notifier in held for notifier in pending)

    await eventually(settled, what="every delivery sent")


class ManualTime:
    """Time for `monitor.schedule` that moves only when a test says so: a sleep ends when
    `run_for` moves the clock past its end, and what it woke runs before `run_for` returns."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._order += 1
        heapq.heappush(self._sleepers, (self.now + seconds, self._order, woken))
        await woken

    async def run_for(self, seconds: float) -> None:
        """Move the clock `seconds` on, waking each sleep at its own moment, in order."""
        end = self.now + seconds
        await _settle()
        while self._sleepers and self._sleepers[0][0] <= end:
            at, _, woken = heapq.heappop(self._sleepers)
            self.now = max(self.now, at)
            if not woken.done():
                woken.set_result(None)
            await _settle()
        self.now = end
        await _settle()


async def _settle() -> None:
    """Let every task that can run, run until it waits again."""
    for _ in range(20):
        await asyncio.sleep(0)


@contextlib.contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements `engine` runs inside the block, BEGIN and COMMIT aside."""
    ran: list[str] = []

    def count(*args: object) -> None:
        ran.append(str(args[2]))

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield ran
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Recorder:
    """A notifier that keeps what it is sent."""

    kind = "recorder"

    def __init__(self, name: str = "ops") -> None:
        self.name = name
        self.sent: list[Delivery] = []

    async def send(self, delivery: Delivery) -> str:
        self.sent.append(delivery)
        return "recorded"

    async def send_notice(self, notice: Notice) -> str:
        raise AssertionError(f"no notice expected here, got {notice}")

    async def aclose(self) -> None:
        return None
