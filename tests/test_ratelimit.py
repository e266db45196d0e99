from __future__ import annotations

import asyncio

from monitor.upstream.ratelimit import TokenBucket


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.starts: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_requests_never_exceed_the_rate_whatever_the_demand() -> None:
    time = VirtualTime()
    bucket = TokenBucket(5.0, burst=1.0, clock=time.clock, sleep=time.sleep)

    async def request() -> None:
        await bucket.acquire()
        time.starts.append(time.now)

    await asyncio.gather(*(request() for _ in range(50)))
    assert len(time.starts) == 50
    for first, later in zip(time.starts, time.starts[5:], strict=False):
        assert later - first >= 1.0 - 1e-9, "never more than 5 in any second"
    assert time.starts[-1] <= 49 / 5 + 1e-9, "and the whole budget is used"


async def test_idle_time_refills_up_to_the_burst_only() -> None:
    time = VirtualTime()
    bucket = TokenBucket(2.0, burst=3.0, clock=time.clock, sleep=time.sleep)
    time.now = 100.0
    for _ in range(3):
        await bucket.acquire()
    assert time.now == 100.0, "a burst of 3 goes at once"
    await bucket.acquire()
    assert time.now == 100.5
