"""The one place that wires the monitor together, and takes it apart in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from types import TracebackType

import aiohttp

from monitor.config import Config
from monitor.detect import Rules
from monitor.dispatch import Dispatcher, Route
from monitor.notifiers import build_notifier
from monitor.poller import Poller, Target, Watch, new_id
from monitor.ratelimit import TokenBucket
from monitor.redact import redactor
from monitor.scheduler import PollTicker, tick_for
from monitor.store.engine import create_engine, upgrade
from monitor.store.outbox import Outbox
from monitor.store.repository import Repository, WatchEntry
from monitor.ticketmaster import InventoryClient

logger = logging.getLogger(__name__)

# Docker waits 10s between SIGTERM and SIGKILL; leave room for closing connections.
SHUTDOWN_GRACE = 6.0


def watchlist(config: Config) -> dict[str, Watch]:
    return {
        event.id: Watch(
            event.id,
            event.name,
            config.interval_of(event),
            tuple(
                Target(
                    name,
                    config.rules_for(event, name),
                    hold=config.notifiers[name].group_window or 0.0,
                    cooldown=max(event.cooldown or 0.0, config.notifiers[name].cooldown or 0.0),
                )
                for name in config.targets_of(event)
            ),
        )
        for event in config.events
    }


async def sync_watchlist(
    repository: Repository, config: Config, watches: dict[str, Watch], now: float
) -> tuple[list[str], list[str]]:
    """Bring the database's watchlist and batches in line with `watches`."""
    return await repository.sync_watchlist(
        [WatchEntry(w.event_id, w.name, w.interval) for w in watches.values()],
        config.ticketmaster.batch_size,
        now,
        new_id,
    )


def build_poller(
    config: Config,
    *,
    repository: Repository,
    client: InventoryClient,
    watches: dict[str, Watch],
    clock: Callable[[], float],
    on_changes: Callable[[], None] = lambda: None,
) -> Poller:
    tm = config.ticketmaster
    return Poller(
        repository,
        client,
        watches,
        rules=Rules(config.polling.unknown_after, config.polling.snapshot_every),
        batch_size=tm.batch_size,
        max_in_flight=tm.max_in_flight,
        # Long enough for a request with its timeout; after it, a crashed poll is retried.
        lease=2 * tm.timeout + 30.0,
        notify_baseline=config.polling.notify_baseline,
        clock=clock,
        on_changes=on_changes,
    )


class Monitor:
    """The running daemon: `async with Monitor(config): ...` polls and notifies until exit."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Monitor:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        config, stack = self.config, self._stack
        redactor.add(config.secrets())

        engine = create_engine(config.database.url)
        stack.push_async_callback(engine.dispose)
        await upgrade(engine)
        self.repository = Repository(engine)
        watches = watchlist(config)
        added, removed = await sync_watchlist(self.repository, config, watches, self.clock())
        logger.info(
            "watching %d events (%d new, %d no longer watched) with %d notifiers",
            len(watches),
            len(added),
            len(removed),
            len(config.notifiers),
        )

        tm = config.ticketmaster
        session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=tm.max_in_flight * 2))
        )
        client = InventoryClient(
            session,
            tm.base_url,
            tm.api_key.get_secret_value(),
            tm.timeout,
            TokenBucket(tm.requests_per_second),
        )

        routes = {}
        for name, notifier_config in config.notifiers.items():
            notifier = build_notifier(name, notifier_config)
            stack.push_async_callback(notifier.aclose)
            routes[name] = Route.of(notifier, notifier_config)
        self.dispatcher = Dispatcher(Outbox(engine), routes, self.clock)
        dispatching = asyncio.create_task(self.dispatcher.run(), name="dispatcher")
        stack.push_async_callback(self._stop_dispatcher, dispatching)

        self.poller = build_poller(
            config,
            repository=self.repository,
            client=client,
            watches=watches,
            clock=self.clock,
            on_changes=self.dispatcher.wake,
        )
        shortest = min((w.interval for w in watches.values()), default=config.polling.interval)
        ticker = PollTicker(self.poller, tick_for(shortest))
        ticker.start()
        stack.push_async_callback(ticker.stop, SHUTDOWN_GRACE / 2)

    async def _stop_dispatcher(self, task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        try:
            await asyncio.wait_for(self.dispatcher.drain(), SHUTDOWN_GRACE / 3)
        except TimeoutError:
            logger.warning("deliveries still in flight at shutdown are sent again on restart")
        await self.dispatcher.aclose()
