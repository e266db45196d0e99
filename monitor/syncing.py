"""The watchlist kept in line with what is asked of it: the config file's events, the watches
stored by the API, the CLI and searches, and users' subscriptions. One component does it for
a reload, for a write in this process and for a write seen from another replica.

A write costs the one event it names: its batch in the database, its entry in the poller's
watchlist and in what the server judges "watching" by. Only a reload, or a flood of writes
elsewhere, plans the whole watchlist again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from monitor.config import Config, EventConfig
from monitor.in_force import held_in, watched_event, with_watches
from monitor.markets import UK_REGIONS
from monitor.models import new_id
from monitor.polling.poller import Poller
from monitor.polling.watchlist import Shared, Watch, watch_of, watchlist
from monitor.store.accounts import is_user_entry
from monitor.store.batching import unit_size
from monitor.store.event_details import Details
from monitor.store.membership import apply_watches
from monitor.store.repository import Repository
from monitor.store.subscriptions import Subscriptions
from monitor.store.watches import Watches
from monitor.times import DAY
from monitor.upstream.health import Upstream
from monitor.upstream.quota import QuotaPlan, plan_for, quota_warning, rate_warning
from monitor.watchlog import LogCursor
from monitor.wording import plural

logger = logging.getLogger(__name__)

FOLLOW_AT_MOST = 1000
"""Watch writes applied one by one in a tick; past that, the whole watchlist is read again."""


class WatchlistSync:
    def __init__(
        self,
        config: Callable[[], Config],
        *,
        repository: Repository,
        watches: Watches,
        subscriptions: Subscriptions,
        poller: Poller,
        upstream: Upstream,
        request_size: Callable[[], int],
        clock: Callable[[], float],
        poke: Callable[[], None],
        announce: Callable[[Sequence[str]], Awaitable[None]],
        refresh_channels: Callable[[], Awaitable[None]],
    ) -> None:
        self._config = config
        self._repository = repository
        self._details = Details(repository.engine)
        self._watches = watches
        self._subscriptions = subscriptions
        self._poller = poller
        self._upstream = upstream
        self._request_size = request_size
        self._clock = clock
        self._poke = poke
        self._announce = announce
        self._refresh_channels = refresh_channels
        self.lock = asyncio.Lock()
        """Held by whatever changes the watchlist: a reload, a write, a replan."""
        self.planned_size = 0
        """The request size the quota was last planned with."""
        self._cursor = LogCursor()
        self._plan: QuotaPlan | None = None
        self._shared: Shared = {}
        self._in_force: Config | None = None
        """`in_force` as last made; None after a watch write, until someone asks."""
        self._events: dict[str, EventConfig] | None = None
        """The events watched now, the file's and the database's, by ID: made from
        `in_force` at the first write after a full sync (100,000 entries cost some 5 MB)."""
        self._configured: dict[str, EventConfig] | None = None
        """The file's events by ID, made with `_events`."""
        self._venues: dict[str, str] = {}
        """Where Discovery says watched events without a region are held (GB or IE)."""

    @property
    def in_force(self) -> Config:
        """The configuration with every watch in force, the file's and the database's: what
        the watchdog and the HTTP server judge "watching anything" by. Made again only
        when asked after a write, so that a write costs one event's work."""
        if self._in_force is None:
            events = () if self._events is None else tuple(self._events.values())
            self._in_force = self._config().model_copy(update={"events": events})
        return self._in_force

    async def resync(self, config: Config) -> None:
        """The whole watchlist again, from `config` and the stored watches: at start, at a
        reload, or after a flood of writes elsewhere. Cycles in flight keep the states
        they claimed. The caller holds `lock`."""
        # Writes from here on are followed one by one, even those this read sees already.
        self._cursor = LogCursor(floor=await self._watches.last_change())
        audience = await self._subscriptions.audience()
        config = with_watches(config, await self._watches.stored(), audience)
        config = await self._placed(config)
        self._in_force = config
        self._plan = await self._planned(config)
        self._shared = {}
        self._events = self._configured = None
        watches = watchlist(config, self._plan, self._shared, audience)
        added, removed = await self._repository.sync_watchlist(
            watches.values(),
            unit_size(config.ticketmaster.pinned_batch_size),
            self._clock(),
            new_id,
        )
        logger.info(
            "watching %s (%d new, %d no longer watched) with %s",
            plural(len(watches), "event"),
            len(added),
            len(removed),
            plural(len(config.notifiers), "notifier"),
        )
        self._poller.replace_watchlist(watches)
        await self._refresh_channels()
        await self._announce(removed)

    async def follow(self) -> None:
        """Writes to watches made anywhere (this process, the CLI, another replica, a
        search) since the last look, each applied to the one event it names. A flood of
        them reads the whole watchlist again instead."""
        entries = await self._watches.changes_after(self._cursor.floor, FOLLOW_AT_MOST)
        if not entries:
            return
        if len(entries) == FOLLOW_AT_MOST:
            async with self.lock:
                await self.resync(self._config())
            return
        taken = self._cursor.take(entries, self._clock())
        if any(is_user_entry(entry) for entry in taken):
            await self._refresh_channels()
        event_ids = [entry for entry in taken if not is_user_entry(entry)]
        if event_ids:
            await self.apply(event_ids)

    async def apply(self, event_ids: Sequence[str]) -> None:
        """Bring `event_ids` alone in line with the file and the stored watches: their
        batches in the database, the poller's watchlist and what the server judges by. A
        cycle in flight is left alone (see `Poller.set_watch`)."""
        async with self.lock:
            wanted = await self._wanted(event_ids)
            config = self._config()
            applied = await apply_watches(
                self._repository.engine,
                wanted,
                unit_size(config.ticketmaster.pinned_batch_size),
                self._clock(),
                new_id,
            )
            for event_id, watch in wanted.items():
                self._poller.set_watch(event_id, watch)
            self._in_force = None
            if applied.added or applied.removed:
                logger.info(
                    "watching %d events (%d new, %d no longer watched)",
                    len(self._events or ()),
                    len(applied.added),
                    len(applied.removed),
                )
        if applied.added:
            self._poke()  # a new watch's first reading now, not at the next tick
        if applied.removed:
            await self._announce(applied.removed)

    async def held_in(self, venues: Mapping[str, str]) -> None:
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
        await self.apply(sorted(fresh))

    async def _wanted(self, event_ids: Sequence[str]) -> dict[str, Watch | None]:
        """What each of `event_ids` should be polled as now; None for one no longer watched."""
        config = self._config()
        if self._events is None or self._configured is None:
            self._events = {event.id: event for event in self.in_force.events}
            self._configured = {event.id: event for event in config.events}
        stored = await self._watches.get_many(event_ids)
        audience = await self._subscriptions.audience(event_ids)
        wanted: dict[str, Watch | None] = {}
        for event_id in event_ids:
            followers = audience.get(event_id, ())
            event = watched_event(
                config, self._configured.get(event_id), stored.get(event_id), followers, event_id
            )
            if event is None:
                self._events.pop(event_id, None)
                wanted[event_id] = None
                continue
            event = held_in(event, self._venues.get(event_id))
            self._events[event_id] = event
            wanted[event_id] = watch_of(config, event, self._plan, self._shared, followers)
        return wanted

    async def _placed(self, config: Config) -> Config:
        """`config` with each event that names no region polled where Discovery says it is
        held, as learnt before."""
        held = await self._details.venue_countries(sorted(UK_REGIONS))
        self._venues = {
            event.id: held[event.id]
            for event in config.events
            if event.region is None and not event.url and event.id in held
        }
        if not self._venues:
            return config
        events = tuple(held_in(event, self._venues.get(event.id)) for event in config.events)
        return config.model_copy(update={"events": events})

    async def _planned(self, config: Config) -> QuotaPlan | None:
        """The watchlist's cost against the quota, with a warning when it does not fit;
        the plan that stretches intervals with `fit_quota`, else None."""
        size = self._request_size()
        burst = config.polling.sale_burst
        coming = await self._details.coming_bursts(self._clock(), DAY, burst.before, burst.after)
        plan = plan_for(config, self._upstream.status.quota.limit, size, bursts=len(coming))
        self.planned_size = size
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
        too_fast = rate_warning(config, size)
        if too_fast:
            logger.warning("%s", too_fast)
        return plan if config.polling.fit_quota else None
