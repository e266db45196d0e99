"""Bursts of polls around sale openings: from `before` an opening until `after` it, its
event is polled at the burst interval, then at its own again."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import orjson
import pytest
import yaml
from sqlalchemy import select, update

from monitor.devtools.catalog import discovery_event
from monitor.discovery.client import DiscoveryClient
from monitor.discovery_jobs.refresher import DetailsRefresher
from monitor.models import SaleOpening, new_id
from monitor.polling.watchlist import Watch
from monitor.sales import burst_until, next_burst_opening, next_sale
from monitor.store.engine import create_engine, upgrade
from monitor.store.event_details import Details
from monitor.store.repository import Repository
from monitor.store.tables import batches, event_details, events
from tests.conftest import API_KEY
from tests.e2e import run_cli
from tests.rig import Rig, RigBuilder
from tests.support import RN, A

BEFORE, AFTER, BURST = 120.0, 1800.0, 10.0
OWN = 60.0


@pytest.mark.unit
@pytest.mark.parametrize(
    ("now", "until"),
    [
        (1000.0 - BEFORE - 1, None),
        (1000.0 - BEFORE, 1000.0 + AFTER),
        (1500.0, 1400.0 + AFTER),  # two openings close together: the later burst lasts
        (1400.0 + AFTER - 1, 1400.0 + AFTER),
        (1400.0 + AFTER, None),
    ],
)
def test_burst_windows(now: float, until: float | None) -> None:
    assert burst_until([1000.0, 1400.0], now, BEFORE, AFTER) == until


@pytest.mark.unit
@pytest.mark.parametrize(
    ("now", "following"),
    [(0.0, 1000.0), (1000.0 + AFTER - 1, 1000.0), (1000.0 + AFTER, 5000.0), (9000.0, None)],
)
def test_the_next_opening_to_burst_for(now: float, following: float | None) -> None:
    assert next_burst_opening([5000.0, 1000.0], now, AFTER) == following


@pytest.mark.unit
def test_the_next_sale() -> None:
    sales = [SaleOpening("public", None, 300.0), SaleOpening("presale", "Fans", 200.0)]
    assert next_sale(sales, 100.0) == 200.0
    assert next_sale(sales, 200.0) == 300.0
    assert next_sale(sales, 300.0) is None


async def interval_of(r: Rig, event_id: str) -> float:
    async with r.engine.connect() as conn:
        query = (
            select(batches.c.interval_s)
            .join(events, events.c.batch_id == batches.c.id)
            .where(events.c.event_id == event_id)
        )
        return float(await conn.scalar(query) or 0.0)


async def test_an_event_is_polled_in_bursts_around_its_sale_opening(rig: RigBuilder) -> None:
    r = await rig(
        watches={"E1": Watch("E1", "Pulp", OWN), "E2": Watch("E2", None, OWN, partition="/GB")},
        batch_size=10,
    )
    opens = r.clock() + 3600
    show = datetime.fromtimestamp(opens, UTC) + timedelta(days=30)
    r.simulator.catalog.add(
        discovery_event(
            "E1", "Pulp", starts_at=show, public_sale=(datetime.fromtimestamp(opens, UTC), show)
        )
    )
    r.simulator.set("E1", A, RN)
    r.simulator.set("E2", A, RN)
    store = Details(r.engine)
    async with aiohttp.ClientSession() as session:
        refresher = DetailsRefresher(
            store,
            lambda: DiscoveryClient(session, r.simulator_url, API_KEY, timeout=5.0),
            refresh=lambda: 86400.0,
            clock=r.clock,
            watchlist=lambda: r.poller.watchlist,
        )
        await refresher.run()

    async def tick() -> None:
        await r.poller.burst(await store.bursts(r.clock(), BEFORE, AFTER), BURST)
        await r.cycle_when_due()

    await tick()
    assert await interval_of(r, "E1") == OWN

    r.clock.now = opens - BEFORE
    await tick()
    await tick()  # the move happens after the cycle that saw the burst begin
    assert await interval_of(r, "E1") == BURST
    assert await interval_of(r, "E2") == OWN, "only the event whose sale opens"
    polls = [r.simulator.polled_at["E1"]]
    while r.clock() < opens + AFTER - BURST:
        await tick()
        if r.simulator.polled_at["E1"] != polls[-1]:
            polls.append(r.simulator.polled_at["E1"])
    gaps = [later - earlier for earlier, later in itertools.pairwise(polls)]
    assert len(polls) > (BEFORE + AFTER) / BURST * 0.9
    assert max(gaps) <= BURST, "polled every 10s throughout the burst"

    r.clock.now = opens + AFTER
    await tick()
    await tick()
    assert await interval_of(r, "E1") == OWN, "back to its own interval"
    assert await store.bursts(r.clock() + 86400, BEFORE, AFTER) == {}


async def test_check_shows_the_coming_bursts_and_plans_for_them(tmp_path: Path) -> None:
    database = tmp_path / "monitor.db"
    config = tmp_path / "monitor.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ticketmaster": {"api_key": API_KEY},
                "database": {"url": f"sqlite+aiosqlite:///{database}"},
                "notifiers": {"console": {"type": "log"}},
                "events": [{"id": "E1", "name": "Pulp"}, {"id": "E2"}],
            }
        )
    )
    code, out, err = await run_cli("check", "--config", str(config))
    assert code == 0, err
    assert "burst:" not in out, "no database yet: nothing known of sales"

    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        await upgrade(engine)
        now = time.time()
        watches = [Watch("E1", "Pulp", OWN), Watch("E2", None, OWN)]
        await Repository(engine).sync_watchlist(watches, 100, now, new_id)
        opens = now + 3 * 3600
        sales = [{"kind": "public", "name": None, "starts_at": opens, "ends_at": None}]
        async with engine.begin() as conn:
            await conn.execute(
                update(event_details)
                .where(event_details.c.event_id == "E1")
                .values(sales=orjson.dumps(sales).decode(), burst_sale_at=opens)
            )
        coming = await Details(engine).coming_bursts(now, 86400, BEFORE, AFTER)
        assert [(b.event_id, b.starts_at, b.ends_at) for b in coming] == [
            ("E1", opens - BEFORE, opens + AFTER)
        ]
    finally:
        await engine.dispose()

    code, out, err = await run_cli("check", "--config", str(config))
    assert code == 0, err
    # 2 events every 60s: 1,440 requests, 1 Discovery search, at most 192 for the burst.
    assert "quota:     1,633 requests a day of 5,000" in out
    assert "of which at most 192 for 1 burst within a day" in out
    assert "burst:     Pulp every 10s, " in out


async def test_a_burst_never_slows_an_event_down(rig: RigBuilder) -> None:
    r = await rig(watches={"E1": Watch("E1", None, 5.0)}, batch_size=10)
    await r.cycle()
    await r.poller.burst({"E1": r.clock() + 600}, BURST)
    await r.cycle()
    assert await interval_of(r, "E1") == 5.0


async def test_the_ticker_gathers_no_longer_than_the_fastest_poll_allows(rig: RigBuilder) -> None:
    """How long a wake waits for more due batches follows the fastest event: a write that
    adds one, a burst, and a reload that takes it away."""
    r = await rig(watches={"E1": Watch("E1", None, 60.0)}, batch_size=10)
    assert r.poller.shortest_interval == 60.0
    r.poller.set_watch("E2", Watch("E2", None, 30.0, interval_by_status={A: 20.0}))
    assert r.poller.shortest_interval == 20.0, "an interval by status counts"
    await r.poller.burst({"E1": r.clock() + 600}, BURST)
    assert r.poller.shortest_interval == BURST
    r.poller.replace_watchlist({"E1": Watch("E1", None, 60.0)})
    assert r.poller.shortest_interval == 60.0
