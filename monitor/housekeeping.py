"""The periodic jobs besides polling and delivery, on the daemon's one schedule: this
replica's heartbeat and share of the rate, what other replicas learnt of the upstream,
retention, Discovery's details and searches, sale bursts, and what state-keeping notifiers
and `/metrics` are told."""

from __future__ import annotations

import logging
from collections.abc import Callable

import aiohttp

from monitor.config import Config
from monitor.discovery.client import DiscoveryClient
from monitor.discovery_jobs.discoverer import Discoverer
from monitor.discovery_jobs.refresher import DetailsRefresher
from monitor.in_force import quota_shares
from monitor.metrics import Metrics
from monitor.notify.announcer import Announcer
from monitor.notify.switchboard import Switchboard
from monitor.notify.watchdog import Watchdog
from monitor.polling.poller import Poller
from monitor.schedule import Schedule
from monitor.store.limiter import SharedLimiter
from monitor.store.replicas import HEARTBEAT
from monitor.store.retention import prune
from monitor.syncing import WatchlistSync
from monitor.times import DAY
from monitor.upstream.health import Upstream
from monitor.upstream.quota import pace_note
from monitor.upstream.ratelimit import Limiter
from monitor.upstream.sizing import RequestSize
from monitor.wiring import PACING, Stores, discovery_for, endpoint_of

logger = logging.getLogger(__name__)

ANNOUNCE_EVERY = 3
"""Housekeeping rounds between announcements of the watchlist's states."""
SHARES_EVERY = 6
"""Housekeeping rounds between counts of what each user's subscriptions cost."""
PRUNE_EVERY = 3600.0
PRUNE_FIRST_AFTER = 60.0
LOG_KEPT = DAY
"""How long the watch log keeps an entry: any replica running follows it long before."""


class Housekeeping:
    def __init__(
        self,
        config: Callable[[], Config],
        clock: Callable[[], float],
        *,
        stores: Stores,
        session: aiohttp.ClientSession,
        upstream: Upstream,
        limiter: Limiter,
        request_size: RequestSize,
        poller: Poller,
        sync: WatchlistSync,
        switchboard: Switchboard,
        watchdog: Watchdog,
        announcer: Announcer,
        metrics: Metrics,
        saved_size: int | None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._stores = stores
        self._session = session
        self._upstream = upstream
        self._limiter = limiter
        self._request_size = request_size
        self._poller = poller
        self._sync = sync
        self._switchboard = switchboard
        self._watchdog = watchdog
        self._announcer = announcer
        self._metrics = metrics
        self._saved_size = saved_size
        self._paced = False
        self._pruned_at = clock() - PRUNE_EVERY + PRUNE_FIRST_AFTER
        self.shares: dict[str, float] = {}
        """Requests a day each user's subscriptions add, as last counted."""
        self.details = DetailsRefresher(
            stores.details,
            self.discovery,
            refresh=lambda: config().discovery.refresh,
            clock=clock,
            watchlist=lambda: poller.watchlist,
            on_changes=switchboard.wake,
            on_venues=sync.held_in,
        )
        self.discoverer = Discoverer(
            stores.watches,
            self.discovery,
            config=config,
            clock=clock,
            notify=watchdog.notify,
            subscriptions=stores.subscriptions,
            channels=self._channel_names,
            details=stores.details,
            followed=stores.searches,
        )

    def start(self, schedule: Schedule, every: float) -> None:
        schedule.every("replicas", min(every, HEARTBEAT), self.share_rate)
        schedule.every("upstream", every, self._adopt_upstream)
        schedule.every("watchdog", every, self._watchdog.check)
        schedule.every("retention", every, self._prune_when_due)
        schedule.every("details", every, self._refresh_details)
        schedule.every("bursts", every, self._burst)
        schedule.every("discover", every, self._discover)
        schedule.every("announce", every * ANNOUNCE_EVERY, self._announcer.states)
        schedule.every("shares", every * SHARES_EVERY, self._count_shares)

    def discovery(self) -> DiscoveryClient:
        """A client on the key and pacing of the moment."""
        return discovery_for(self._config(), self._session, self._limiter)

    async def share_rate(self) -> None:
        """Say this replica is alive, release the claims of those gone silent, and keep to
        the API key's rate: through the shared limiter, or as this replica's part of it."""
        count = await self._stores.replicas.beat(self._clock())
        rate = self._config().ticketmaster.requests_per_second * PACING
        if isinstance(self._limiter, SharedLimiter):
            count = 1  # the shared limiter paces the cluster as a whole
        rate /= count
        if abs(rate - self._limiter.rate) > 1e-9:
            if count > 1:
                logger.info(
                    "%d replicas share the API key: this one sends at most %.2f requests a second",
                    count,
                    rate,
                )
            self._limiter.set_rate(rate)

    async def _adopt_upstream(self) -> None:
        """A pause that another replica found holds this one too; a request size learnt
        since the last look is kept, and with `fit_quota` the intervals follow it."""
        config = self._config()
        self._upstream.adopt(await self._stores.repository.load_upstream())
        self._note_pace()
        size = self._request_size.size
        if size != self._saved_size and not self._request_size.pinned:
            await self._stores.repository.save_request_size(
                endpoint_of(config), size, self._clock()
            )
            self._saved_size = size
        if config.polling.fit_quota and size != self._sync.planned_size:
            async with self._sync.lock:
                await self._sync.resync(config)

    def _note_pace(self) -> None:
        """Say when the quota starts holding polling back, what that makes of each event's
        interval, and when it stops: once each, not on every look."""
        note = pace_note(
            self._upstream.status.quota,
            self._clock(),
            self._config().ticketmaster.requests_per_second,  # as `status` and the dashboard
            len(self._poller.watchlist),
            self._poller.request_size,
        )
        if note is not None and not self._paced:
            logger.warning("polling is paced: %s", note)
        elif note is None and self._paced:
            logger.info("the quota no longer holds polling back")
        self._paced = note is not None

    async def _prune_when_due(self) -> None:
        if self._clock() - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = self._clock()
        await self._stores.watches.prune_changes(self._pruned_at - LOG_KEPT)
        retention = self._config().retention
        pruned = await prune(
            self._stores.engine,
            self._pruned_at,
            snapshots_after=retention.snapshots,
            changes_after=retention.changes,
        )
        if pruned.snapshots or pruned.changes:
            logger.info(
                "retention: pruned %d snapshots and %d changes", pruned.snapshots, pruned.changes
            )

    async def _refresh_details(self) -> None:
        if self._config().discovery.enabled:
            await self.details.run()

    async def _discover(self) -> None:
        if self._config().discovery.enabled and await self.discoverer.run():
            await self._sync.follow()

    async def _burst(self) -> None:
        """Events around a sale opening are polled at the burst interval (see `sales`)."""
        burst = self._config().polling.sale_burst
        bursting = (
            await self._stores.details.bursts(self._clock(), burst.before, burst.after)
            if burst.enabled
            else {}
        )
        await self._poller.burst(bursting, burst.interval)

    async def _count_shares(self) -> None:
        """What each user's subscriptions add to the requests a day: for `/metrics` and the
        admin's page. Read every minute, not on every write: it reads every subscription."""
        if not self._switchboard.channels.has_users and not self.shares:
            return  # nobody to count for: no look at the subscriptions
        shares = await quota_shares(
            self._config(),
            self._stores.subscriptions,
            self._stores.watches,
            self._request_size.size,
        )
        if shares or self.shares:
            self._metrics.user_requests.clear()
            for user, per_day in shares.items():
                self._metrics.user_requests.labels(user).set(per_day)
        self.shares = shares

    async def _channel_names(self, user_id: str) -> list[str]:
        return [channel.name for channel in await self._stores.accounts.channels(user_id)]
