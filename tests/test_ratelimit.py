from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import pytest
from sqlalchemy import Float, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.app import Monitor
from monitor.devtools.simulator import Simulator, serve
from monitor.errors import Held
from monitor.models import Quota
from monitor.store.engine import create_engine, upgrade
from monitor.store.limiter import SharedLimiter
from monitor.store.tables import rate_limits
from monitor.upstream.quota import pace_note
from monitor.upstream.ratelimit import TokenBucket
from tests.conftest import API_KEY, ConfigFactory, FakeClock
from tests.rig import RigBuilder
from tests.support import eventually


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.starts: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.unit
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


@pytest.mark.unit
async def test_idle_time_refills_up_to_the_burst_only() -> None:
    time = VirtualTime()
    bucket = TokenBucket(2.0, burst=3.0, clock=time.clock, sleep=time.sleep)
    time.now = 100.0
    for _ in range(3):
        await bucket.acquire()
    assert time.now == 100.0, "a burst of 3 goes at once"
    await bucket.acquire()
    assert time.now == 100.5


@pytest.mark.postgres
async def test_replicas_sharing_a_postgres_limiter_get_slots_one_interval_apart(
    postgres_url: str,
) -> None:
    """Three replicas (three engines on one database) reserve slots at once: each slot is
    one emission interval after the last, as if one process paced them all."""
    engines = [create_engine(postgres_url) for _ in range(3)]
    await upgrade(engines[0])
    limiters = [SharedLimiter(engine, rate=5.0) for engine in engines]
    await limiters[0].ensure()
    await limiters[1].ensure()
    # The next slot far ahead: each reservation then moves it by exactly one interval,
    # however long the reservations take.
    async with engines[0].begin() as conn:
        start = await conn.scalar(
            update(rate_limits)
            .where(rate_limits.c.name == "ticketmaster")
            .values(tat=cast(func.extract("epoch", func.clock_timestamp()), Float) + 1000.0)
            .returning(rate_limits.c.tat)
        )
    waits = await asyncio.gather(*(limiters[i % 3].reserve() for i in range(15)))
    async with engines[0].connect() as conn:
        end = await conn.scalar(
            select(rate_limits.c.tat).where(rate_limits.c.name == "ticketmaster")
        )
    for engine in engines:
        await engine.dispose()
    assert end == pytest.approx(start + 15 * 0.2, abs=1e-6), "fifteen slots, one interval apart"
    assert len({round(wait, 3) for wait in waits}) == 15, "no two replicas share a slot"


@pytest.mark.postgres
async def test_replicas_spend_one_shared_quota_and_are_held_together(postgres_url: str) -> None:
    engines = [create_engine(postgres_url) for _ in range(2)]
    try:
        await spend_one_quota(engines)
    finally:
        for engine in engines:
            await engine.dispose()


async def spend_one_quota(engines: list[AsyncEngine]) -> None:
    await upgrade(engines[0])
    one, other = (SharedLimiter(engine, rate=1000.0, name="quota-test") for engine in engines)
    await one.ensure()
    soon = time.time() + 600
    await one.observe_quota(available=3, reset_at=soon)
    await other.observe_quota(available=9, reset_at=soon)  # a late answer gives nothing back
    await one.reserve()
    await other.reserve()
    await one.reserve()
    with pytest.raises(Held) as caught:
        await other.reserve()
    assert caught.value.until == pytest.approx(soon, abs=2)
    with pytest.raises(Held):
        await one.reserve()

    await one.observe_quota(available=0, reset_at=time.time() - 1)
    await other.reserve()  # the reset has passed: the quota is unknown again, not spent

    await one.observe_quota(available=0, reset_at=None)
    await one.observe_quota(available=0, reset_at=None)
    with pytest.raises(Held) as unknown:
        await one.reserve()
    assert unknown.value.until == pytest.approx(time.time() + 3600, abs=5), "an hour, then again"


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", [pytest.param("postgres")], indirect=True)
async def test_a_daemon_on_postgres_paces_through_the_shared_limiter(
    database_url: str, make_config: ConfigFactory
) -> None:
    simulator = Simulator(api_key=API_KEY)
    async with serve(simulator) as upstream:
        config = make_config(
            ticketmaster={"base_url": upstream, "api_key": API_KEY, "batch_size": 1},
            database={"url": database_url},
            server={"enabled": False},
            polling={"interval": "1s"},
            events=[{"id": f"E{i}"} for i in range(3)],
        )
        async with Monitor(config) as monitor:
            assert isinstance(monitor.parts.limiter, SharedLimiter)
            await eventually(lambda: simulator.answered >= 3, what="polls through the limiter")
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                query = select(rate_limits.c.name, rate_limits.c.tat)
                (name, tat), *_ = (await connection.execute(query)).all()
        finally:
            await engine.dispose()
    assert name == "ticketmaster"
    assert tat > time.time() - 60, "every request took its slot in the shared row"


async def test_the_quota_is_spread_until_its_reset(
    rig: RigBuilder, simulator: tuple[Simulator, str], clock: FakeClock
) -> None:
    """A watchlist that needs 48 requests a minute, a quota of 30 that resets every minute:
    the requests are spread over each minute, most of the quota is used, and none is
    refused. Time is the test's: the pacing's waits move the clock."""
    sim, _ = simulator
    sim.quota, sim.quota_period, sim.quota_reset_at = 30, 60.0, clock() + 60.0

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    limiter = TokenBucket(100.0, clock=clock, wall=clock, sleep=sleep)
    r = await rig(ids=tuple(f"E{i:02d}" for i in range(40)), batch_size=5, limiter=limiter)
    start = clock()
    while clock() < start + 300:
        await r.poller.run_cycle()
        clock.advance(1.0)
    assert sim.quota_refusals == 0
    times = [at for at in sim.requested_at if at >= start + 60]  # past the first answer
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert max(gaps) <= 15.0, "no gap over a quarter of the window"
    windows = Counter(int((at - start) // 60) for at in times)
    assert all(count >= 0.8 * 30 for window, count in windows.items() if 1 <= window <= 3), windows


async def test_the_log_says_once_when_the_quota_paces_polling_and_what_that_makes_of_it(
    make_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    simulator = Simulator(api_key=API_KEY, quota=20, quota_period=60.0)
    async with serve(simulator) as upstream:
        config = make_config(
            ticketmaster={"base_url": upstream, "batch_size": 2, "requests_per_second": 50},
            polling={"interval": "1s"},
            events=[{"id": f"E{i}"} for i in range(20)],
        )
        async with Monitor(config, housekeeping_every=0.05) as monitor:

            def said() -> list[str]:
                return [r.getMessage() for r in caplog.records if "paced" in r.getMessage()]

            await eventually(lambda: bool(said()), what="the pacing said")
            looks = monitor.schedule.job("upstream")
            seen = looks.runs
            await eventually(lambda: looks.runs >= seen + 3, what="more looks at the quota")
    (note,) = said()
    assert note.startswith("polling is paced: the quota left (")
    assert "lasts until its reset at " in note
    assert "each of the 20 watched events is polled about every " in note
    assert simulator.quota_refusals == 0


@pytest.mark.unit
@pytest.mark.parametrize(
    ("available", "reset_in", "events", "says"),
    [
        (
            30,
            60.0,
            100,
            "one request every 2s: each of the 100 watched events is polled about every 20s",
        ),
        (
            2,
            180.0,
            1000,
            "one request every 1m30s: each of the 1,000 watched events is polled about every 2h30m",
        ),
        (600, 60.0, 100, None),
        (0, 60.0, 100, None),
    ],
)
def test_what_pacing_makes_of_the_watchlist(
    available: int, reset_in: float, events: int, says: str | None
) -> None:
    now = 1_800_000_000.0
    quota = Quota(1000, available, reset_at=now + reset_in)
    note = pace_note(quota, now, rate=5.0, events=events, ids_per_request=10)
    assert (note is not None and says in note) if says else note is None, note


@pytest.mark.postgres
async def test_replicas_spread_what_is_left_of_the_quota_until_its_reset(
    postgres_url: str,
) -> None:
    """Ten requests left and a reset 100 s away: whichever replica asks, the cluster's slots
    come about ten seconds apart, however fast the rate would allow."""
    engines = [create_engine(postgres_url) for _ in range(2)]
    try:
        await upgrade(engines[0])
        one, other = (SharedLimiter(e, rate=1000.0, name="pace-test") for e in engines)
        await one.ensure()
        await one.observe_quota(10, time.time() + 100)
        waits = [await limiter.reserve() for limiter in (one, other, one, other)]
        gaps = [later - earlier for earlier, later in itertools.pairwise(waits)]
        assert all(9.0 < gap < 13.0 for gap in gaps), waits
        assert one.within(60) == 6, "this replica claims what goes out within a minute"
    finally:
        for engine in engines:
            await engine.dispose()
