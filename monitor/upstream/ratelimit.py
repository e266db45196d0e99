"""Request pacing, so the daemon never provokes Ticketmaster's spike arrest itself and never
spends its quota faster than it lasts: a token bucket in memory for a single process
(replicas on PostgreSQL share `store.limiter`).

Once an answer has said what is left of the quota (`Rate-Limit-Available`) and when it
resets (`Rate-Limit-Reset`), requests go no faster than what is left over the time left.
A watchlist that needs more than that is polled less often, evenly (each claim takes the
most overdue batches first), rather than at full speed until the quota runs out and then
not at all until the reset."""

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
        """What an answer said is left of the quota and when it resets (Unix time): from
        then on, requests are paced so that it lasts until the reset."""

    def within(self, seconds: float) -> int:
        """How many requests may go out within `seconds` from now (at least one)."""


class TokenBucket:
    """`rate` requests a second on average, at most `burst` at once; callers over the budget
    wait their turn instead of failing."""

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._tokens = burst
        self._updated = clock()
        self._lock = asyncio.Lock()
        self._quota: tuple[int, float] | None = None
        """What is left of the quota, and when it resets on `clock`; None when unknown."""
        self._spent = 0
        """Requests let out since the last answer said what is left."""

    @property
    def rate(self) -> float:
        return self._rate

    def set_rate(self, rate: float) -> None:
        """A new rate from now on (another replica came or went)."""
        self._refill(self._clock())
        self._rate = rate

    async def acquire(self) -> None:
        # One waiter at a time keeps the order fair and the arithmetic simple.
        async with self._lock:
            now = self._clock()
            self._refill(now)
            if self._tokens < 1:
                await self._sleep((1 - self._tokens) / self._pace(now))
                self._tokens, self._updated = 1.0, self._clock()
            self._tokens -= 1
            self._spent += 1

    async def observe_quota(self, available: int | None, reset_at: float | None) -> None:
        if available is None or reset_at is None:
            return
        left = reset_at - self._wall()
        now = self._clock()
        self._refill(now)
        self._quota = (available, now + left) if left > 0 else None
        self._spent = 0

    def within(self, seconds: float) -> int:
        now = self._clock()
        return max(1, int(self._tokens + (now - self._updated + seconds) * self._pace(now)))

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._pace(now))
        self._updated = now

    def _pace(self, now: float) -> float:
        """Requests a second now: the rate, or less when the quota would not last."""
        if self._quota is None:
            return self._rate
        available, reset = self._quota
        if now >= reset:
            self._quota = None  # a new quota: the next answer says how much
            return self._rate
        # With nothing left, one request at the reset: its answer tells the new quota.
        return min(self._rate, max(available - self._spent, 1) / (reset - now))
