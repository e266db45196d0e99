"""The poller wired to a real simulator and a real database, with time in the test's hands."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.devtools.simulator import Simulator
from monitor.metrics import Metrics
from monitor.models import new_id
from monitor.notify.routing import Target
from monitor.polling.detect import Rules
from monitor.polling.poller import Poller, RetryPolicy
from monitor.polling.watchlist import Watch
from monitor.store.engine import create_engine, upgrade
from monitor.store.reads import Reads
from monitor.store.repository import Repository
from monitor.store.tables import batches, events
from monitor.upstream.health import Upstream
from monitor.upstream.inventory import InventoryClient
from monitor.upstream.ratelimit import TokenBucket
from monitor.upstream.sizing import RequestSize
from tests.conftest import API_KEY, FakeClock

INTERVAL = 10.0
RETRY = RetryPolicy(initial=2.0, maximum=300.0)


@dataclass
class Rig:
    poller: Poller
    repository: Repository
    engine: AsyncEngine
    simulator: Simulator
    clock: FakeClock
    upstream: Upstream
    simulator_url: str
    metrics: Metrics

    @property
    def reads(self) -> Reads:
        return Reads(self.engine)

    async def cycle(self, advance: float = INTERVAL) -> None:
        await self.poller.run_cycle()
        self.clock.advance(advance)

    async def cycle_when_due(self) -> None:
        """Move the clock to the earliest due batch and poll what is due then."""
        self.clock.now = max(self.clock.now, min((await self.due_times()).values()))
        await self.poller.run_cycle()

    async def count(self, table: Table) -> int:
        async with self.engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(table)) or 0)

    async def interval_of(self, event_id: str) -> float:
        """The interval of the batch `event_id` is in."""
        async with self.engine.connect() as connection:
            query = (
                select(batches.c.interval_s)
                .join(events, events.c.batch_id == batches.c.id)
                .where(events.c.event_id == event_id)
            )
            return float(await connection.scalar(query) or 0.0)

    async def due_times(self) -> dict[str, float]:
        """Each batch's next due time, by the ID of its first member event."""
        async with self.engine.connect() as connection:
            rows = await connection.execute(select(batches.c.id, batches.c.next_due_at))
            due = dict(rows.all())
            members = await connection.execute(
                select(func.min(events.c.event_id), events.c.batch_id)
                .where(events.c.batch_id.is_not(None))
                .group_by(events.c.batch_id)
            )
            return {first: due[batch_id] for first, batch_id in members.all()}


RigBuilder = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def rig(
    database_url: str, simulator: tuple[Simulator, str], clock: FakeClock
) -> AsyncIterator[RigBuilder]:
    sim, url = simulator
    engines: list[AsyncEngine] = []
    async with aiohttp.ClientSession() as session:

        async def build(  # noqa: PLR0917 - every argument has a default
            ids: tuple[str, ...] = ("E1", "E2", "E3"),
            batch_size: int = 2,
            targets: tuple[Target, ...] = (Target("ops"),),
            watches: dict[str, Watch] | None = None,
            max_in_flight: int = 2,
            request_timeout: float = 2.0,
            limiter: TokenBucket | None = None,
            retry: RetryPolicy = RETRY,
            size: RequestSize | None = None,
        ) -> Rig:
            engine = create_engine(database_url)
            engines.append(engine)
            await upgrade(engine)
            repository = Repository(engine)
            if watches is None:
                watches = {i: Watch(i, f"Show {i}", INTERVAL, targets) for i in ids}
            await repository.sync_watchlist(
                watches.values(),
                batch_size,
                clock(),
                new_id,
            )
            # Every batch due now rather than spread over the interval: one cycle polls all.
            async with engine.begin() as connection:
                await connection.execute(update(batches).values(next_due_at=clock()))
            upstream = Upstream(clock=clock, degraded_after=3, invalid_key_retry=300.0)
            metrics = Metrics()
            client = InventoryClient(
                session,
                url,
                API_KEY,
                request_timeout,
                limiter=limiter,
                upstream=upstream,
                clock=clock,
                size=size or RequestSize.of(batch_size, max_url_bytes=8000),
                metrics=metrics,
            )
            poller = Poller(
                repository,
                client,
                watches,
                rules=Rules(unknown_after=3, snapshot_every=3600.0),
                unit_size=batch_size,
                max_in_flight=max_in_flight,
                lease=30.0,
                notify_baseline=False,
                clock=clock,
                upstream=upstream,
                retry=retry,
                rng=random.Random(7),
                metrics=metrics,
            )
            return Rig(poller, repository, engine, sim, clock, upstream, url, metrics)

        yield build
    for engine in engines:
        await engine.dispose()
