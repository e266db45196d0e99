"""Figures an answer or a saved row may carry, however hostile, never hang the daemon: every
planner loop is bounded, and odd rate headers never reach the plan."""

from __future__ import annotations

import asyncio
import math

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from monitor.app import Monitor
from monitor.errors import Held
from monitor.models import Health, Quota
from monitor.store.engine import create_engine, upgrade
from monitor.store.repository import saved_quota
from monitor.store.tables import upstream
from monitor.upstream.answers import AnswerReader
from monitor.upstream.health import Upstream
from monitor.upstream.inventory import InventoryClient
from monitor.upstream.quota import Demand, plan_quota
from tests.conftest import ConfigFactory

NOW = 1_800_000_000.0

demands = st.lists(
    st.builds(
        Demand,
        st.floats(min_value=0.001, max_value=100 * 365 * 86400.0),
        st.sampled_from(["", "tmr/US"]),
        st.integers(min_value=1, max_value=10),
    ),
    max_size=30,
)


@pytest.mark.unit
@settings(deadline=2000, max_examples=200)
@given(demands, st.integers(min_value=1, max_value=1000), st.integers(-(2**70), 2**70))
def test_the_quota_planner_always_finishes_with_a_usable_plan(
    wanted: list[Demand], batch_size: int, quota: int
) -> None:
    plan = plan_quota(wanted, batch_size, quota)
    assert plan.quota >= 1
    assert plan.scale >= 1.0


header = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.integers(-(2**80), 2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)


@pytest.mark.unit
@settings(max_examples=300)
@given(header, header, header)
def test_rate_headers_of_any_shape_leave_a_quota_that_plans(
    limit: str | None, available: str | None, reset: str | None
) -> None:
    headers = {
        name: value
        for name, value in (
            ("Rate-Limit", limit),
            ("Rate-Limit-Available", available),
            ("Rate-Limit-Reset", reset),
        )
        if value is not None
    }
    answers = AnswerReader("http://127.0.0.1:9", lambda: NOW, max_retry_after=300.0, metrics=None)
    tracker = Upstream(clock=lambda: NOW)
    tracker.observe_quota(*answers.quota_headers(headers))
    quota = tracker.status.quota
    for count in (quota.limit, quota.available):
        assert count is None or 0 <= count < 2**63
    assert quota.reset_at is None or quota.reset_at <= NOW + 25 * 3600
    plan_quota([Demand(1.0, "")] * 50, 1, quota.limit or 5000)


async def test_a_saved_negative_quota_hangs_neither_start_up_nor_reload(
    make_config: ConfigFactory,
) -> None:
    config = make_config(events=[{"id": f"E{i}", "interval": "1s"} for i in range(500)])
    engine = create_engine(config.database.url)
    await upgrade(engine)
    async with engine.begin() as connection:
        await connection.execute(
            update(upstream).values(quota_limit=-5, quota_available=-1, quota_reset_at=-1e308)
        )
    await engine.dispose()

    async def start_and_reload() -> Quota:
        async with Monitor(config) as monitor:
            async with monitor.parts.sync.lock:
                await monitor.parts.sync.resync(config)
            return monitor.parts.upstream.status.quota

    quota = await asyncio.wait_for(start_and_reload(), 10)
    assert quota.limit is None, "a negative saved quota means nothing"
    assert quota.available is None


class SpentQuota:
    """A shared limiter whose cluster has spent the day's quota."""

    rate = 5.0

    def set_rate(self, rate: float) -> None:
        self.rate = rate

    async def acquire(self) -> None:
        raise Held(NOW + 3600)

    async def observe_quota(self, available: int | None, reset_at: float | None) -> None:
        raise AssertionError("no request went out, so no answer came back")

    def within(self, seconds: float) -> int:
        return 1


@pytest.mark.unit
async def test_a_quota_the_replicas_spent_holds_this_replica_too() -> None:
    tracker = Upstream(clock=lambda: NOW)
    async with aiohttp.ClientSession() as session:
        client = InventoryClient(
            session, "http://127.0.0.1:9", "key", 1.0, upstream=tracker, limiter=SpentQuota()
        )
        with pytest.raises(Held):
            await client.fetch(["E1"])
    assert tracker.held_until() == NOW + 3600
    assert tracker.status.health is Health.QUOTA_EXHAUSTED
    with pytest.raises(Held):
        await tracker.admit()


@pytest.mark.unit
@settings(max_examples=200, deadline=2000)
@given(
    st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_any_saved_quota_row_plans(
    limit: int | None, available: int | None, reset_at: float | None
) -> None:
    """What a start-up or a reload reads back from the `upstream` row always plans."""
    quota = saved_quota(limit, available, reset_at)
    for count in (quota.limit, quota.available):
        assert count is None or count >= 0
    assert quota.reset_at is None or math.isfinite(quota.reset_at)
    plan = plan_quota([Demand(30.0, "")] * 100, 10, quota.limit or 5000)
    assert plan.scale >= 1.0
