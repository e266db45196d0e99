"""What the Discovery API costs of the quota: the details of 1,000 watched events (a tenth
of them legacy IDs with links) and a `discover:` search every 6 hours, against the
simulator's Discovery API, a day of the daemon's runs played with an injected clock.
Prints one JSON line: Discovery requests in the day, the planner's figure, and the share
of the default quota of 5,000."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from monitor.config import parse_config
from monitor.devtools.catalog import discovery_event
from monitor.devtools.simulator import Simulator, serve
from monitor.discovery.client import DiscoveryClient
from monitor.discovery_jobs.discoverer import Discoverer
from monitor.discovery_jobs.refresher import DetailsRefresher
from monitor.models import new_id
from monitor.polling.watchlist import Watch
from monitor.store.engine import create_engine, upgrade
from monitor.store.event_details import Details
from monitor.store.repository import Repository
from monitor.store.watches import Watches
from monitor.upstream.quota import DETAILS_PER_REQUEST, discover_per_day

EVENTS = 1000
LEGACY_SHARE = 10
DAY = 86400.0
EVERY = 30.0
"""How often the refresh runs here (the daemon runs it every 5 s; what it asks does not
depend on that, so the day is played in fewer steps)."""
QUOTA = 5000
KEY = "bench-key"
_CONFIG = {
    "ticketmaster": {"api_key": KEY},
    "notifiers": {"log": {"type": "log"}},
    "discover": [{"name": "shows", "keyword": "Show", "every": "6h", "window": "400d"}],
}


def _watches() -> list[Watch]:
    watches = []
    for i in range(EVENTS):
        if i % LEGACY_SHARE == 0:
            legacy = f"{i:016X}"
            link = f"https://www.ticketmaster.com/show-{i}-tickets/event/{legacy}"
            watches.append(Watch(legacy, None, 60.0, partition="//legacy", link=link))
        else:
            watches.append(Watch(f"G5v{i:06d}ZpCY3S", None, 60.0))
    return watches


async def bench() -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    now = [1_800_000_000.0]
    simulator = Simulator(api_key=KEY, clock=lambda: now[0])
    start = datetime(2027, 6, 1, 19, 30, tzinfo=UTC)
    watches = _watches()
    by_id = {watch.event_id: watch for watch in watches}
    for i, watch in enumerate(watches):
        url = watch.link.split("?")[0] if watch.link else None
        event_id = f"U{i:06d}" if watch.link else watch.event_id
        simulator.catalog.add(
            discovery_event(
                event_id, f"Show {i}", starts_at=start + timedelta(days=i % 300), url=url
            )
        )
    engine = create_engine(f"sqlite+aiosqlite:///{workdir / 'bench.db'}")
    try:
        await upgrade(engine)
        await Repository(engine).sync_watchlist(watches, 100, now[0], new_id)
        async with serve(simulator) as url, aiohttp.ClientSession() as session:
            refresher = DetailsRefresher(
                Details(engine),
                lambda: DiscoveryClient(session, url, KEY, timeout=10.0),
                refresh=lambda: DAY,
                clock=lambda: now[0],
                watchlist=lambda: by_id,
            )
            config = parse_config(json.dumps(_CONFIG), "bench.yaml", {})

            async def nothing(*_: object) -> None:
                return None

            discoverer = Discoverer(
                Watches(engine),
                lambda: DiscoveryClient(session, url, KEY, timeout=10.0),
                config=lambda: config,
                clock=lambda: now[0],
                notify=nothing,
            )
            # The first day fetches everything once; the second is the steady state.
            end = now[0] + DAY
            while now[0] < end:
                await refresher.run()
                await discoverer.run()
                now[0] += EVERY
            before = simulator.requests
            end = now[0] + DAY
            while now[0] < end:
                await refresher.run()
                await discoverer.run()
                now[0] += EVERY
            per_day = simulator.requests - before
    finally:
        await engine.dispose()
        shutil.rmtree(workdir)
    legacy = EVENTS // LEGACY_SHARE
    planned = -(-(EVENTS - legacy) // DETAILS_PER_REQUEST) + legacy + discover_per_day(config)
    return {
        "events": EVENTS,
        "legacy": legacy,
        "requests_per_day": per_day,
        "planned_per_day": round(planned),
        "share_of_quota": per_day / QUOTA,
    }


def main() -> None:
    print(json.dumps(asyncio.run(bench())))


if __name__ == "__main__":
    main()
