"""The daemon put together, in the order its parts need one another. Each part that runs in
the background is entered on the exit stack as it starts, so that the stack takes the
daemon apart in reverse: the schedule first, then polling, the server, delivery, and the
database last."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from monitor.config import Config
from monitor.discovery.details import Attraction
from monitor.following import Following
from monitor.housekeeping import Housekeeping
from monitor.metrics import Metrics
from monitor.notify.announcer import Announcer
from monitor.notify.switchboard import Switchboard
from monitor.notify.watchdog import Watchdog
from monitor.polling.poller import FOLLOW_EVERY, Poller
from monitor.polling.ticker import PollTicker, tick_for
from monitor.redact import redactor
from monitor.schedule import Schedule
from monitor.server.context import Context
from monitor.server.web import serve
from monitor.store.batching import unit_size
from monitor.store.engine import create_engine, upgrade
from monitor.subscribing import Subscribing
from monitor.syncing import WatchlistSync
from monitor.upstream.health import Upstream
from monitor.upstream.inventory import InventoryClient
from monitor.upstream.ratelimit import Limiter
from monitor.upstream.sizing import RequestSize
from monitor.users import Users
from monitor.watching import Watching
from monitor.wiring import (
    Stores,
    build_poller,
    build_upstream,
    client_for,
    endpoint_of,
    limiter_for,
)

SHUTDOWN_GRACE = 6.0
"""Docker waits 10 s between SIGTERM and SIGKILL; this leaves room for closing connections."""


@dataclass(frozen=True)
class Timing:
    """How often the daemon looks at things besides polling; tests shorten them."""

    housekeeping_every: float = 10.0
    follow_every: float = FOLLOW_EVERY


@dataclass(frozen=True)
class Parts:
    """The running daemon's parts: what `Monitor.parts` hands tests, benchmarks and tools."""

    stores: Stores
    session: aiohttp.ClientSession
    upstream: Upstream
    limiter: Limiter
    request_size: RequestSize
    switchboard: Switchboard
    poller: Poller
    ticker: PollTicker
    sync: WatchlistSync
    watchdog: Watchdog
    housekeeping: Housekeeping
    context: Context | None
    url: str | None
    """The HTTP server's base URL, once it listens; None without a server."""
    client: Callable[[Config], InventoryClient]
    """An Inventory Status client for a config's upstream settings, on the daemon's
    session, request size, pacing and health."""


async def assemble(
    config: Callable[[], Config],
    stack: AsyncExitStack,
    *,
    config_path: Path | None,
    schedule: Schedule,
    metrics: Metrics,
    clock: Callable[[], float] = time.time,
    timing: Timing = Timing(),
) -> Parts:
    settings = config()
    tm = settings.ticketmaster
    redactor.add(settings.secrets())
    engine = create_engine(settings.database.url)
    stack.push_async_callback(engine.dispose)
    await upgrade(engine)
    stores = Stores.on(engine, settings, config_path)
    upstream = build_upstream(settings, clock, await stores.repository.load_upstream())
    learnt = await stores.repository.load_request_size(endpoint_of(settings))
    request_size = RequestSize.of(
        tm.pinned_batch_size, tm.max_url_bytes, learnt, grain=unit_size(tm.pinned_batch_size)
    )
    session = await stack.enter_async_context(
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=tm.max_in_flight * 2))
    )
    await stack.enter_async_context(stores.replicas.joined(clock))
    limiter = await limiter_for(settings, engine)
    switchboard = await stack.enter_async_context(
        Switchboard(
            config,
            stores.accounts,
            stores.outbox,
            clock,
            metrics=metrics,
            drain_for=SHUTDOWN_GRACE / 3,
        )
    )
    client = functools.partial(
        client_for,
        session=session,
        size=request_size,
        upstream=upstream,
        clock=clock,
        metrics=metrics,
        limiter=limiter,
    )
    announcer = Announcer(
        switchboard.notifiers, stores.reads, stores.watches, stores.subscriptions, upstream
    )

    async def follow() -> None:
        await sync.follow()

    poller = build_poller(
        settings,
        repository=stores.repository,
        client=client(settings),
        watches={},
        clock=clock,
        upstream=upstream,
        metrics=metrics,
        on_changes=switchboard.wake,
        # Another replica's write to a watch (or the CLI's) reaches this watchlist before
        # the next claim, so no batch is polled without a member just added.
        before_claim=follow,
        follow_every=timing.follow_every,
    )
    ticker = PollTicker(poller, schedule, tick_for(settings.shortest_interval()))
    sync = WatchlistSync(
        config,
        repository=stores.repository,
        watches=stores.watches,
        subscriptions=stores.subscriptions,
        poller=poller,
        upstream=upstream,
        request_size=lambda: request_size.size,
        clock=clock,
        poke=ticker.poke,
        announce=announcer.announce,
        refresh_channels=switchboard.refresh_channels,
    )
    async with sync.lock:
        await sync.resync(settings)
    watchdog = await stack.enter_async_context(
        Watchdog(
            config=lambda: sync.in_force,
            notifiers=switchboard.notifiers,
            upstream=upstream,
            reads=stores.reads,
            clock=clock,
        )
    )
    housekeeping = Housekeeping(
        config,
        clock,
        stores=stores,
        session=session,
        upstream=upstream,
        limiter=limiter,
        request_size=request_size,
        poller=poller,
        sync=sync,
        switchboard=switchboard,
        watchdog=watchdog,
        announcer=announcer,
        metrics=metrics,
        saved_size=learnt,
    )
    await housekeeping.share_rate()
    await stores.replicas.reclaim(clock())
    await stack.enter_async_context(ticker.polling(SHUTDOWN_GRACE / 2))
    context = (
        _context(
            config,
            clock=clock,
            metrics=metrics,
            stores=stores,
            upstream=upstream,
            switchboard=switchboard,
            ticker=ticker,
            sync=sync,
            housekeeping=housekeeping,
        )
        if settings.server.enabled
        else None
    )
    url = None if context is None else await stack.enter_async_context(serve(context))
    housekeeping.start(schedule, timing.housekeeping_every)
    return Parts(
        stores,
        session,
        upstream,
        limiter,
        request_size,
        switchboard,
        poller,
        ticker,
        sync,
        watchdog,
        housekeeping,
        context,
        url,
        client,
    )


def _context(
    config: Callable[[], Config],
    *,
    clock: Callable[[], float],
    metrics: Metrics,
    stores: Stores,
    upstream: Upstream,
    switchboard: Switchboard,
    ticker: PollTicker,
    sync: WatchlistSync,
    housekeeping: Housekeeping,
) -> Context:
    """What the HTTP server reads and writes through."""

    async def artists(name: str) -> Sequence[Attraction]:
        return await housekeeping.discovery().attractions(name)

    async def retry(delivery_id: str) -> bool:
        requeued = await stores.outbox.requeue_deliveries(clock(), ids=[delivery_id])
        if requeued:
            switchboard.wake()
        return bool(requeued)

    return Context(
        lambda: sync.in_force,
        stores.reads,
        upstream,
        metrics,
        clock,
        started_at=clock(),
        polling=ticker.running,
        storage_failures=lambda: ticker.storage_failures,
        watching=Watching(
            stores.watches, config, clock, changed=sync.apply, released=switchboard.wake
        ),
        retry=retry,
        shares=lambda: housekeeping.shares,
        users=Users(
            stores.accounts,
            stores.subscriptions,
            clock,
            changed=sync.apply,
            channels_changed=switchboard.refresh_channels,
        ),
        subscribing=Subscribing(
            stores.accounts,
            stores.subscriptions,
            config,
            clock,
            standing=stores.reads.event_rows_of,
            changed=sync.apply,
            channels_changed=switchboard.refresh_channels,
            released=switchboard.wake,
            reads=stores.reads,
            artists=artists,
        ),
        following=Following(stores.searches, config, clock, artists=artists),
    )
