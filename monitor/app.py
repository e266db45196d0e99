"""The one place that wires the monitor together, and takes it apart in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType

import aiohttp
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.config import Config, EventConfig, load_config
from monitor.discovery.client import DiscoveryClient
from monitor.discovery.details import Attraction
from monitor.errors import ConfigError, StoreError
from monitor.filewatch import FileWatcher
from monitor.following import Following
from monitor.markets import UK_REGIONS
from monitor.metrics import Metrics
from monitor.models import DaemonHealth, EventStatus, new_id
from monitor.notify.channels import ChannelRoster
from monitor.notify.dispatcher import Dispatcher
from monitor.notify.notifiers.base import Notifier, StatePublisher
from monitor.notify.roster import Roster
from monitor.notify.watchdog import Watchdog
from monitor.polling.discover import Discoverer
from monitor.polling.poller import FOLLOW_EVERY
from monitor.polling.refresher import DetailsRefresher
from monitor.polling.ticker import PollTicker, tick_for
from monitor.polling.watchlist import Shared, Watch, watch_of, watchlist
from monitor.redact import redactor
from monitor.schedule import Schedule
from monitor.server.context import Context
from monitor.server.web import serve
from monitor.store.accounts import Accounts, is_user_entry
from monitor.store.batching import unit_size
from monitor.store.engine import create_engine, database_reason, upgrade
from monitor.store.event_details import Details
from monitor.store.followed import Searches
from monitor.store.limiter import SharedLimiter
from monitor.store.membership import apply_watches
from monitor.store.outbox import Outbox
from monitor.store.reads import Reads
from monitor.store.replicas import HEARTBEAT, Replicas, replica_id
from monitor.store.repository import Repository
from monitor.store.retention import prune
from monitor.store.subscriptions import Subscriptions
from monitor.store.watches import Watches
from monitor.subscribing import Subscribing, quota_shares
from monitor.tasks import finish
from monitor.upstream.inventory import InventoryClient, availability_endpoint
from monitor.upstream.quota import QuotaPlan, pace_note, plan_for, quota_warning, rate_warning
from monitor.upstream.ratelimit import Limiter, TokenBucket
from monitor.upstream.sizing import RequestSize
from monitor.users import Users
from monitor.watching import Watching, held_in, watched_event, with_watches
from monitor.watchlog import LogCursor
from monitor.wiring import (
    PACING,
    build_poller,
    build_upstream,
    client_for,
    lease_for,
    sync_watchlist,
)
from monitor.wording import plural

logger = logging.getLogger(__name__)

# Docker waits 10s between SIGTERM and SIGKILL; leave room for closing connections.
SHUTDOWN_GRACE = 6.0
RETIRE_AFTER = 60.0
"""Longest wait for sends through replaced notifiers before they are closed anyway."""
ANNOUNCE_EVERY = 3
SHARES_EVERY = 6
"""Housekeeping rounds between counts of what each user's subscriptions cost."""
DAY = 86400.0
"""Housekeeping rounds between announcements of the watchlist's states."""
PRUNE_EVERY = 3600.0
PRUNE_FIRST_AFTER = 60.0
FOLLOW_AT_MOST = 1000
"""Watch writes applied one by one in a tick; past that, the whole watchlist is read again."""
LOG_KEPT = DAY
"""How long the watch log keeps an entry: any replica running follows it long before."""
RESTART_ONLY = ("database", "server", "logging")
"""Sections a reload does not apply: they are set up once, at start."""


class Monitor:
    """The running daemon: `async with Monitor(config): ...` polls and notifies until exit."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        config_path: Path | None = None,
        watch_every: float = 2.5,
        housekeeping_every: float = 10.0,
        follow_every: float = FOLLOW_EVERY,
    ) -> None:
        self.config = config
        self.clock = clock
        self.metrics = Metrics()
        self.url: str | None = None
        """The HTTP server's base URL, once it listens."""
        self.context: Context | None = None
        self.config_path = config_path
        """Where the config came from: SIGHUP, or a change of the file, reloads it."""
        self._watch_every = watch_every
        self._housekeeping_every = housekeeping_every
        self._follow_every = follow_every
        self._roster = Roster()
        self._watcher: FileWatcher | None = None
        self.schedule = Schedule()
        """Every periodic job: the poll tick, housekeeping, the config file's watcher."""
        self._reloading = asyncio.Lock()
        self._cursor = LogCursor()
        self._plan: QuotaPlan | None = None
        self._shared: Shared = {}
        self._watched: Config | None = config
        """`watched` as last made; None after a watch write, until someone asks."""
        self._events: dict[str, EventConfig] | None = None
        """The events watched now, the file's and the database's, by ID: made from
        `watched` at the first write after a full sync (100,000 entries cost some 5 MB)."""
        self._configured: dict[str, EventConfig] | None = None
        """The file's events by ID, made with `_events`."""
        self._retiring: set[asyncio.Task[None]] = set()
        self._stack = AsyncExitStack()
        self._venues: dict[str, str] = {}
        """Where Discovery says watched events without a region are held (GB or IE)."""
        self.shares: dict[str, float] = {}
        """Requests a day each user's subscriptions add, as last counted."""

    @property
    def watched(self) -> Config:
        """The configuration with every watch in force, the file's and the database's: what
        the watchdog and the HTTP server judge "watching anything" by. Made again only
        when asked after a write, so that a write costs one event's work."""
        if self._watched is None:
            events = () if self._events is None else tuple(self._events.values())
            self._watched = self.config.model_copy(update={"events": events})
        return self._watched

    async def __aenter__(self) -> Monitor:
        try:
            await self._start()
        except BaseException as exc:
            await self._stack.aclose()
            if isinstance(exc, SQLAlchemyError):
                # The CLI's contract at start-up: one line, exit 1, no traceback.
                raise StoreError(f"the database cannot be used: {database_reason(exc)}") from None
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
        self.replicas = Replicas(engine, replica_id(self.config_path), lease_for(config))
        self.repository = Repository(engine, replica=self.replicas.id)
        self.reads = Reads(engine)
        upstream_status = await self.repository.load_upstream()
        tm = config.ticketmaster
        learnt = await self.repository.load_request_size(_endpoint(config))
        self.request_size = RequestSize.of(
            tm.pinned_batch_size, tm.max_url_bytes, learnt, grain=unit_size(tm.pinned_batch_size)
        )
        self._saved_size = learnt
        self._paced = False
        self.watches = Watches(engine)
        self.subscriptions = Subscriptions(engine)
        self.searches = Searches(engine)
        watches, _ = await self._sync(config, upstream_status.quota.limit)

        self._session = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=tm.max_in_flight * 2))
        )
        self.upstream = build_upstream(config, self.clock, upstream_status)
        stack.push_async_callback(self._leave)
        self.limiter = await self._limiter(engine)
        await self._share_rate()
        await self.replicas.reclaim(self.clock())
        client = self._client(config)

        stack.push_async_callback(self._close_notifiers)
        accounts = self._accounts = Accounts(engine)
        self.channels = ChannelRoster(accounts, lambda: self.config.users.allow_private_targets)
        await self.channels.refresh()
        self._config_routes = self._roster.routes(config)[0]
        self.dispatcher = Dispatcher(
            Outbox(engine),
            {**self._config_routes, **self.channels.routes()},
            self.clock,
            metrics=self.metrics,
        )
        dispatching = asyncio.create_task(self.dispatcher.run(), name="dispatcher")
        stack.push_async_callback(self._stop_dispatcher, dispatching)
        await self._announce([])

        self.poller = build_poller(
            config,
            repository=self.repository,
            client=client,
            watches=watches,
            clock=self.clock,
            upstream=self.upstream,
            metrics=self.metrics,
            on_changes=self.dispatcher.wake,
            # Another replica's write to a watch (or the CLI's) reaches this watchlist before
            # the next claim, so no batch is polled without a member just added.
            before_claim=self._follow_watches,
            follow_every=self._follow_every,
        )
        self.ticker = PollTicker(self.poller, self.schedule, tick_for(config.shortest_interval()))
        self.ticker.start()
        stack.push_async_callback(self.ticker.stop, SHUTDOWN_GRACE / 2)

        if config.server.enabled:
            self.context = Context(
                lambda: self.watched,
                self.reads,
                self.upstream,
                self.metrics,
                self.clock,
                started_at=self.clock(),
                polling=self.ticker.running,
                storage_failures=lambda: self.ticker.storage_failures,
                watching=Watching(
                    self.watches,
                    lambda: self.config,
                    self.clock,
                    changed=self._apply,
                    released=self.dispatcher.wake,
                ),
                retry=self._retry,
                shares=lambda: self.shares,
                users=Users(
                    accounts,
                    self.subscriptions,
                    self.clock,
                    changed=self._apply,
                    channels_changed=self._refresh_channels,
                ),
                subscribing=Subscribing(
                    accounts,
                    self.subscriptions,
                    lambda: self.config,
                    self.clock,
                    standing=self.reads.event_rows_of,
                    changed=self._apply,
                    channels_changed=self._refresh_channels,
                    released=self.dispatcher.wake,
                    reads=self.reads,
                    artists=self._artists,
                ),
                following=Following(
                    self.searches, lambda: self.config, self.clock, artists=self._artists
                ),
            )
            self.url = await stack.enter_async_context(serve(self.context))
        self.watchdog = Watchdog(
            config=lambda: self.watched,
            notifiers=self.dispatcher.notifiers,
            upstream=self.upstream,
            reads=self.reads,
            clock=self.clock,
        )
        stack.push_async_callback(self.watchdog.aclose)
        self._engine = engine
        self._housekeeping(engine)
        if self.config_path is not None:
            self._watcher = FileWatcher(self.config_path, self.reload)
            self.schedule.every("config file", self._watch_every, self._watcher.check)
        # Every periodic job from here on; they stop first, before the parts they use.
        self.schedule.start()
        stack.push_async_callback(self.schedule.stop)

    def _housekeeping(self, engine: AsyncEngine) -> None:
        """The periodic jobs besides polling and delivery."""
        self._pruned_at = self.clock() - PRUNE_EVERY + PRUNE_FIRST_AFTER
        every = self._housekeeping_every
        self.schedule.every("replicas", min(every, HEARTBEAT), self._share_rate)
        self.schedule.every("upstream", every, self._adopt_upstream)
        self.schedule.every("watchdog", every, self.watchdog.check)
        self.schedule.every("retention", every, self._prune_when_due)
        self._details = Details(engine)
        self.details = DetailsRefresher(
            self._details,
            self._discovery_client,
            refresh=lambda: self.config.discovery.refresh,
            clock=self.clock,
            watchlist=lambda: self.poller.watchlist,
            on_changes=self.dispatcher.wake,
            on_venues=self._held_in,
        )
        self.schedule.every("details", every, self._refresh_details)
        self.schedule.every("bursts", every, self._burst)
        self.discoverer = Discoverer(
            self.watches,
            self._discovery_client,
            config=lambda: self.config,
            clock=self.clock,
            notify=self.watchdog.notify,
            subscriptions=self.subscriptions,
            channels=self._channel_names,
            details=self._details,
            followed=self.searches,
        )
        self.schedule.every("discover", every, self._discover)
        # Baselines and renames reach state-keeping notifiers (MQTT) this way; changes at once.
        self.schedule.every("announce", every * ANNOUNCE_EVERY, self._announce_states)
        self.schedule.every("shares", every * SHARES_EVERY, self._count_shares)

    def _discovery_client(self) -> DiscoveryClient:
        """A client on the key and pacing of the moment: Discovery draws on the same
        quota and rate as polling."""
        tm = self.config.ticketmaster
        return DiscoveryClient(
            self._session,
            tm.base_url,
            tm.api_key.get_secret_value(),
            tm.timeout,
            limiter=self.limiter,
            max_answer_bytes=tm.max_answer_bytes,
        )

    async def _refresh_details(self) -> None:
        if self.config.discovery.enabled:
            await self.details.run()

    async def _discover(self) -> None:
        if self.config.discovery.enabled and await self.discoverer.run():
            await self._follow_watches()

    async def _follow_watches(self) -> None:
        """Writes to watches made anywhere (this process, the CLI, another replica, a
        search) since the last look, each applied to the one event it names. A flood of
        them reads the whole watchlist again instead."""
        entries = await self.watches.changes_after(self._cursor.floor, FOLLOW_AT_MOST)
        if not entries:
            return
        if len(entries) == FOLLOW_AT_MOST:
            async with self._reloading:
                await self._resync(self.config)
            return
        taken = self._cursor.take(entries, self.clock())
        if any(is_user_entry(entry) for entry in taken):
            await self._refresh_channels()
        event_ids = [entry for entry in taken if not is_user_entry(entry)]
        if event_ids:
            await self._apply(event_ids)

    async def _apply(self, event_ids: Sequence[str]) -> None:
        """Bring `event_ids` alone in line with the file and the stored watches: their
        batches in the database, the poller's watchlist and what the server judges by. A
        cycle in flight is left alone (see `Poller.set_watch`)."""
        async with self._reloading:
            if self._events is None or self._configured is None:
                self._events = {event.id: event for event in self.watched.events}
                self._configured = {event.id: event for event in self.config.events}
            stored = await self.watches.get_many(event_ids)
            audience = await self.subscriptions.audience(event_ids)
            wanted: dict[str, Watch | None] = {}
            for event_id in event_ids:
                followers = audience.get(event_id, ())
                event = watched_event(
                    self.config,
                    self._configured.get(event_id),
                    stored.get(event_id),
                    followers,
                    event_id,
                )
                if event is None:
                    self._events.pop(event_id, None)
                    wanted[event_id] = None
                else:
                    event = held_in(event, self._venues.get(event_id))
                    self._events[event_id] = event
                    wanted[event_id] = watch_of(
                        self.config, event, self._plan, self._shared, followers
                    )
            applied = await apply_watches(
                self.repository.engine,
                wanted,
                unit_size(self.config.ticketmaster.pinned_batch_size),
                self.clock(),
                new_id,
            )
            for event_id, watch in wanted.items():
                self.poller.set_watch(event_id, watch)
            self._watched = None
            if applied.added or applied.removed:
                logger.info(
                    "watching %d events (%d new, %d no longer watched)",
                    len(self._events),
                    len(applied.added),
                    len(applied.removed),
                )
        if applied.added:
            self.ticker.poke()  # a new watch's first reading now, not at the next tick
        if applied.removed:
            await self._announce(applied.removed)

    async def _placed(self, config: Config) -> Config:
        """`config` with each event that names no region polled where Discovery says it is
        held, as learnt before."""
        held = await Details(self.repository.engine).venue_countries(sorted(UK_REGIONS))
        self._venues = {
            event.id: held[event.id]
            for event in config.events
            if event.region is None and not event.url and event.id in held
        }
        if not self._venues:
            return config
        events = tuple(held_in(event, self._venues.get(event.id)) for event in config.events)
        return config.model_copy(update={"events": events})

    async def _held_in(self, venues: Mapping[str, str]) -> None:
        """Discovery says where events without a region are held: they move to that
        market's requests now (said once each), or they would answer UNKNOWN for ever."""
        fresh = {e: c for e, c in venues.items() if self._venues.get(e) != c}
        if not fresh:
            return
        self._venues.update(fresh)
        for event_id, country in sorted(fresh.items()):
            logger.info(
                "%s is held in %s (Discovery says so): it is polled with region=UK from now on",
                event_id,
                country,
            )
        await self._apply(sorted(fresh))

    async def _channel_names(self, user_id: str) -> list[str]:
        return [channel.name for channel in await self._accounts.channels(user_id)]

    async def _artists(self, name: str) -> Sequence[Attraction]:
        return await self._discovery_client().attractions(name)

    async def _refresh_channels(self) -> None:
        """Users' channels as they stand: a user written to here or on another replica has
        their routes rebuilt, and the notifiers replaced close once their sends are done."""
        replaced = await self.channels.refresh()
        if replaced is None:
            return
        self.dispatcher.set_routes({**self._config_routes, **self.channels.routes()})
        self._retire_later(replaced)

    def _retire_later(self, notifiers: list[Notifier]) -> None:
        retiring = asyncio.create_task(self._retire(notifiers))
        self._retiring.add(retiring)
        retiring.add_done_callback(self._retiring.discard)

    async def _count_shares(self) -> None:
        """What each user's subscriptions add to the requests a day: for `/metrics` and the
        admin's page. Read every minute, not on every write: it reads every subscription."""
        if not self.channels.has_users and not self.shares:
            return  # nobody to count for: no look at the subscriptions
        shares = await quota_shares(
            self.config, self.subscriptions, self.watches, self.request_size.size
        )
        if shares or self.shares:
            self.metrics.user_requests.clear()
            for user, per_day in shares.items():
                self.metrics.user_requests.labels(user).set(per_day)
        self.shares = shares

    async def _retry(self, delivery_id: str) -> bool:
        """Queue a dead delivery again (the dashboard's button); False if none has the ID."""
        requeued = await Outbox(self._engine).requeue_deliveries(self.clock(), ids=[delivery_id])
        if requeued:
            self.dispatcher.wake()
        return bool(requeued)

    async def _burst(self) -> None:
        """Events around a sale opening are polled at the burst interval (see `sales`)."""
        burst = self.config.polling.sale_burst
        bursting = (
            await self._details.bursts(self.clock(), burst.before, burst.after)
            if burst.enabled
            else {}
        )
        await self.poller.burst(bursting, burst.interval)

    async def _limiter(self, engine: AsyncEngine) -> Limiter:
        """On PostgreSQL, where replicas share a database, one limiter paces them all;
        SQLite serves one process, which paces itself in memory."""
        rate = self.config.ticketmaster.requests_per_second * PACING
        if engine.dialect.name != "postgresql":
            return TokenBucket(rate)
        shared = SharedLimiter(engine, rate)
        await shared.ensure()
        return shared

    async def _leave(self) -> None:
        await self.replicas.leave(self.clock())

    async def _share_rate(self) -> None:
        """Say this replica is alive, release the claims of those gone silent, and keep to
        the API key's rate: through the shared limiter, or as this replica's part of it."""
        count = await self.replicas.beat(self.clock())
        rate = self.config.ticketmaster.requests_per_second * PACING
        if isinstance(self.limiter, SharedLimiter):
            count = 1  # the shared limiter paces the cluster as a whole
        rate /= count
        if abs(rate - self.limiter.rate) > 1e-9:
            if count > 1:
                logger.info(
                    "%d replicas share the API key: this one sends at most %.2f requests a second",
                    count,
                    rate,
                )
            self.limiter.set_rate(rate)

    async def _adopt_upstream(self) -> None:
        """A pause that another replica found holds this one too; a request size learnt
        since the last look is kept, and with `fit_quota` the intervals follow it."""
        self.upstream.adopt(await self.repository.load_upstream())
        self._note_pace()
        size = self.request_size.size
        if size != self._saved_size and not self.request_size.pinned:
            await self.repository.save_request_size(_endpoint(self.config), size, self.clock())
            self._saved_size = size
        if self.config.polling.fit_quota and size != self._planned_size:
            async with self._reloading:
                watches, _ = await self._sync(self.config, self.upstream.status.quota.limit)
                self.poller.replace_watchlist(watches)

    def _note_pace(self) -> None:
        """Say when the quota starts holding polling back, what that makes of each event's
        interval, and when it stops: once each, not on every look."""
        note = pace_note(
            self.upstream.status.quota,
            self.clock(),
            self.config.ticketmaster.requests_per_second,  # as `status` and the dashboard
            len(self.poller.watchlist),
            self.poller.request_size,
        )
        if note is not None and not self._paced:
            logger.warning("polling is paced: %s", note)
        elif note is None and self._paced:
            logger.info("the quota no longer holds polling back")
        self._paced = note is not None

    async def _prune_when_due(self) -> None:
        if self.clock() - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = self.clock()
        await self.watches.prune_changes(self._pruned_at - LOG_KEPT)
        retention = self.config.retention
        pruned = await prune(
            self._engine,
            self._pruned_at,
            snapshots_after=retention.snapshots,
            changes_after=retention.changes,
        )
        if pruned.snapshots or pruned.changes:
            logger.info(
                "retention: pruned %d snapshots and %d changes", pruned.snapshots, pruned.changes
            )

    async def _sync(
        self, config: Config, reported_quota: int | None
    ) -> tuple[dict[str, Watch], list[str]]:
        """Plan the watchlist (the file's events but those paused, and those added through
        the API or found by searches) against the quota, warn when it does not fit, and
        store it; returns the watches and the IDs no longer watched."""
        # Writes from here on are followed one by one, even those this read sees already.
        self._cursor = LogCursor(floor=await self.watches.last_change())
        audience = await self.subscriptions.audience()
        config = with_watches(config, await self.watches.stored(), audience)
        config = await self._placed(config)
        self._watched = config
        burst = config.polling.sale_burst
        coming = await Details(self.repository.engine).coming_bursts(
            self.clock(), DAY, burst.before, burst.after
        )
        plan = plan_for(config, reported_quota, self.request_size.size, bursts=len(coming))
        self._planned_size = self.request_size.size
        warning = quota_warning(config, plan)
        if warning and config.polling.fit_quota:
            logger.warning(
                "the watchlist needs %s requests a day but the daily quota is %s: intervals "
                "are stretched to fit (polling.fit_quota)",
                f"{plan.requests_per_day:,.0f}",
                f"{plan.quota:,}",
            )
        elif warning:
            logger.warning("%s", warning)
        too_fast = rate_warning(config, self.request_size.size)
        if too_fast:
            logger.warning("%s", too_fast)
        self._plan = plan if config.polling.fit_quota else None
        self._shared = {}
        self._events = self._configured = None
        watches = watchlist(config, self._plan, self._shared, audience)
        added, removed = await sync_watchlist(self.repository, config, watches, self.clock())
        logger.info(
            "watching %s (%d new, %d no longer watched) with %s",
            plural(len(watches), "event"),
            len(added),
            len(removed),
            plural(len(config.notifiers), "notifier"),
        )
        return watches, removed

    async def _resync(self, config: Config) -> None:
        """The whole watchlist again, from `config` and the stored watches: a reload, or a
        flood of writes elsewhere. Cycles in flight keep the states they claimed."""
        watches, removed = await self._sync(config, self.upstream.status.quota.limit)
        self.poller.replace_watchlist(watches)
        await self._refresh_channels()
        await self._announce(removed)

    async def _announce_states(self) -> None:
        await self._announce([])

    async def _announce(self, removed: list[str]) -> None:
        """Notifiers that keep state where subscribers see it (MQTT) hear the watchlist as
        it stands, the watcher's own health, and which events left it: those paused keep
        what was published, marked as not watched; the others' is cleared."""
        publishers = [
            notifier
            for notifier in self.dispatcher.notifiers().values()
            if isinstance(notifier, StatePublisher)
        ]
        if not publishers:
            return
        states = [
            EventStatus(
                row.event_id, row.info.name or row.name, row.current, row.last_changed_at, row.info
            )
            for row in await self.reads.event_rows()
        ]
        paused = await self._paused(removed) if removed else set()
        held = [
            EventStatus(
                row.event_id, row.info.name or row.name, row.current, row.last_changed_at, row.info
            )
            for row in (await self.reads.event_rows_of(sorted(paused))).values()
        ]
        upstream = self.upstream.status
        health = DaemonHealth(upstream.last_success_at, upstream.health, upstream.quota.available)
        for publisher in publishers:
            await publisher.publish_states(states)
            await publisher.publish_health(health)
            if held:
                await publisher.pause(held)
            if len(paused) < len(removed):
                await publisher.forget([event_id for event_id in removed if event_id not in paused])

    async def _paused(self, event_ids: Sequence[str]) -> set[str]:
        """Which of `event_ids` are paused, not gone: by a watch's pause, or by every one of
        its followers pausing theirs."""
        stored = await self.watches.get_many(event_ids)
        paused = {event_id for event_id, watch in stored.items() if watch.paused}
        followed = await self.subscriptions.paused_only(
            [event_id for event_id in event_ids if event_id not in paused]
        )
        return paused | followed

    async def reload(self) -> bool:
        """Read the config file again and apply its watchlist and notifiers. An invalid file
        is refused with the same messages as `check`, and the running config stays."""
        if self.config_path is None:
            return False
        async with self._reloading:
            refused: str | None = None
            if self._watcher is not None:
                self._watcher.remember()
            try:
                config = await asyncio.to_thread(load_config, self.config_path)
            except ConfigError as exc:
                refused = str(exc)
            if refused is not None:
                logger.error(
                    "the changed configuration is refused; the running one stays in force:\n%s",
                    refused,
                )
                return False
            redactor.add(config.secrets())
            for section in RESTART_ONLY:
                if getattr(config, section) != getattr(self.config, section):
                    logger.warning("a change of `%s` takes effect at the next restart", section)
            config = config.model_copy(
                update={section: getattr(self.config, section) for section in RESTART_ONLY}
            )
            if config.ticketmaster != self.config.ticketmaster:
                self._use_upstream_settings(config)
            self._config_routes, replaced = self._roster.routes(config)
            self.dispatcher.set_routes({**self._config_routes, **self.channels.routes()})
            await self._resync(config)
            self.ticker.set_every(tick_for(config.shortest_interval()))
            self.config = config
            self._retire_later(replaced)
            logger.info("configuration reloaded from %s", self.config_path)
        # New events, intervals or a replaced key are tried now, not at the next tick.
        self.ticker.poke()
        return True

    def _client(self, config: Config) -> InventoryClient:
        return client_for(
            config,
            self._session,
            size=self.request_size,
            upstream=self.upstream,
            clock=self.clock,
            metrics=self.metrics,
            limiter=self.limiter,
        )

    def _use_upstream_settings(self, config: Config) -> None:
        """A new key, address, timeout or batch size: requests from now on use them."""
        tm = config.ticketmaster
        if (tm.pinned_batch_size, tm.max_url_bytes, tm.base_url) != (
            self.config.ticketmaster.pinned_batch_size,
            self.config.ticketmaster.max_url_bytes,
            self.config.ticketmaster.base_url,
        ):
            self.request_size = RequestSize.of(
                tm.pinned_batch_size,
                tm.max_url_bytes,
                self.request_size.size,
                grain=unit_size(tm.pinned_batch_size),
            )
        self.poller.use_client(
            self._client(config),
            unit_size=unit_size(tm.pinned_batch_size),
            max_in_flight=tm.max_in_flight,
        )
        if tm.api_key != self.config.ticketmaster.api_key:
            # A refused key may have been replaced: try the new one now, not in 5 minutes.
            self.upstream.retry_now(in_flight_for=tm.timeout)

    async def _retire(self, notifiers: list[Notifier]) -> None:
        """Close replaced notifiers once the sends that use them have finished."""
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.dispatcher.drain(), RETIRE_AFTER)
        finally:
            for notifier in notifiers:
                await notifier.aclose()

    async def _close_notifiers(self) -> None:
        for task in list(self._retiring):
            await finish(task)
        await self._roster.aclose()
        await self.channels.aclose()

    async def _stop_dispatcher(self, task: asyncio.Task[None]) -> None:
        await finish(task)
        try:
            await asyncio.wait_for(self.dispatcher.drain(), SHUTDOWN_GRACE / 3)
        except TimeoutError:
            logger.warning("deliveries still in flight at shutdown are sent again on restart")
        await self.dispatcher.aclose()


def _endpoint(config: Config) -> str:
    return availability_endpoint(config.ticketmaster.base_url)
