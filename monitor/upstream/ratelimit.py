"""Request pacing, so the daemon never provokes Ticketmaster's spike arrest itself: a token
bucket in memory for a single process (replicas on PostgreSQL share `store.limiter`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol


class Limiter(Protocol):
    """Paces requests: `acquire` returns when one may go out."""

    @property
    def rate(self) -> float: ...

    def set_rate(self, rate: float) -> None: ...

    async def acquire(self) -> None: ...

    async def observe_quota(self, available: int | None, reset_at: float | None) -> None:
        """What an answer said is left of the daily quota (a shared limiter shares it)."""


class TokenBucket:
    """`rate` requests a second on average, at most `burst` at once; callers over the budget
    wait their turn instead of failing."""

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._updated = clock()
        self._lock = asyncio.Lock()

    @property
    def rate(self) -> float:
        return self._rate

    def set_rate(self, rate: float) -> None:
        """A new rate from now on (another replica came or went)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        self._rate = rate

    async def acquire(self) -> None:
        # One waiter at a time keeps the order fair and the arithmetic simple.
        async with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            if self._tokens < 1:
                await self._sleep((1 - self._tokens) / self._rate)
                self._tokens, self._updated = 1.0, self._clock()
            self._tokens -= 1

    async def observe_quota(self, available: int | None, reset_at: float | None) -> None:
        """One process tracks its quota in `upstream.health`; nothing to share."""
