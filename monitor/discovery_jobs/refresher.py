"""Event details kept fresh from the Discovery API, without ever holding up polling.

Each run claims the events whose details are due (new ones at once, the others every
`refresh`), with those due within a tenth of `refresh` riding along, and asks Discovery
about up to 200 universal IDs in one search. A legacy ID cannot be asked for: its event is found by
searching the words of its configured link and matching the link's ID, a few a run.

Discovery failing costs nothing but details: a failed run is retried later, and a key
without Discovery access pauses the refresh for hours, with one warning.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from urllib.parse import urlsplit

from monitor.discovery.client import DiscoveryClient, DiscoveryRefused, Search
from monitor.discovery.details import EventDetails
from monitor.errors import UpstreamError
from monitor.markets import UK_REGIONS, IdKind, id_kind, slug_words
from monitor.polling.news import deliveries_of, lifecycle_change, news
from monitor.polling.watchlist import Watch
from monitor.sales import sales_opened
from monitor.store.event_details import Details, DetailsDue, SalesDue
from monitor.store.records import PollWrite

logger = logging.getLogger(__name__)

BATCH = 200
"""Events asked about in one search: a page of Discovery's."""
LEGACY_PER_RUN = 5
"""Legacy IDs looked up per run: each costs a search of its own."""
LEASE = 300.0
RETRY = 600.0
EARLY = 0.1
"""Events due within this share of `refresh` ride along in a search that goes out anyway."""
REFUSED_PAUSE = 6 * 3600.0


class DetailsRefresher:
    def __init__(
        self,
        details: Details,
        client: Callable[[], DiscoveryClient],
        *,
        refresh: Callable[[], float],
        clock: Callable[[], float],
        watchlist: Callable[[], Mapping[str, Watch]],
        on_changes: Callable[[], None] = lambda: None,
        on_venues: Callable[[Mapping[str, str]], Awaitable[None]] | None = None,
    ) -> None:
        self._details = details
        self._on_venues = on_venues
        """Told where Discovery says events without a region are held (GB, IE): the
        API answers for those with `region=UK` alone."""
        self._client = client
        self._refresh = refresh
        self._clock = clock
        self._watchlist = watchlist
        self._on_changes = on_changes
        self._paused_until = 0.0
        self._failing = False

    async def run(self) -> int:
        """Announce the sales opening by now, then one round of fetches; returns how many
        events Discovery described."""
        now = self._clock()
        if await self._details.announce_sales(now, lambda due: self._sales_news(due, now)):
            self._on_changes()
        if now < self._paused_until:
            return 0
        refresh = self._refresh()
        due = await self._details.claim(now, BATCH, now + LEASE, early=refresh * EARLY)
        if not due:
            return 0
        legacy = [d for d in due if id_kind(d.event_id) is IdKind.LEGACY]
        asked = [
            *(d.event_id for d in due if id_kind(d.event_id) is IdKind.UNIVERSAL),
            *(d.event_id for d in legacy[:LEGACY_PER_RUN]),
        ]
        found = await self._fetched(due, legacy[:LEGACY_PER_RUN], now)
        if found is None:
            return 0
        later = [d.event_id for d in legacy[LEGACY_PER_RUN:]]
        await self._save(due, found, asked, later, next_at=now + refresh)
        return len(found)

    async def _save(
        self,
        due: list[DetailsDue],
        found: dict[str, EventDetails],
        asked: list[str],
        later: list[str],
        *,
        next_at: float,
    ) -> None:
        """What Discovery said of `asked`, due again at `next_at`; `later` is due at once."""
        now = self._clock()
        missing = [event_id for event_id in asked if event_id not in found]
        next_fetch = dict.fromkeys(asked, next_at) | dict.fromkeys(later, now)
        lifecycle = self._lifecycle_news(due, found, now)
        await self._details.save(
            list(found.values()), [*missing, *later], now, next_fetch, lifecycle
        )
        if lifecycle.changes:
            self._on_changes()
        await self._place(found)
        if missing:
            logger.info(
                "the Discovery API does not know %d watched events (%s); they are polled all "
                "the same, shown by their IDs",
                len(missing),
                ", ".join(missing[:5]),
            )

    async def _fetched(
        self, due: list[DetailsDue], legacy: list[DetailsDue], now: float
    ) -> dict[str, EventDetails] | None:
        """Discovery's details of the universal IDs in `due` and of `legacy`; None when it
        answered none, the batch then due again after a pause."""
        client = self._client()
        universal = [d.event_id for d in due if id_kind(d.event_id) is IdKind.UNIVERSAL]
        try:
            found = await self._universal(client, universal)
            for item in legacy:
                details = await self._legacy(client, item)
                if details is not None:
                    found[item.event_id] = details
        except DiscoveryRefused as exc:
            self._paused_until = now + REFUSED_PAUSE
            logger.warning(
                "the Discovery API refused the key (%s): event details are not fetched for "
                "%g hours; polling goes on (set discovery.enabled: false for keys without "
                "Discovery access)",
                exc,
                REFUSED_PAUSE / 3600,
            )
            await self._details.failed([d.event_id for d in due], self._paused_until)
            return None
        except UpstreamError as exc:
            log = logger.debug if self._failing else logger.warning
            log("event details could not be fetched (%s); trying again in %gs", exc, RETRY)
            self._failing = True
            await self._details.failed([d.event_id for d in due], now + RETRY)
            return None
        self._failing = False
        return found

    async def _place(self, found: Mapping[str, EventDetails]) -> None:
        if self._on_venues is None:
            return
        watches = self._watchlist()
        placed = {
            event_id: details.venue.country
            for event_id, details in found.items()
            if details.venue.country in UK_REGIONS
            and (watch := watches.get(event_id)) is not None
            and watch.market is None
        }
        if placed:
            await self._on_venues(placed)

    def _lifecycle_news(
        self, due: list[DetailsDue], found: Mapping[str, EventDetails], now: float
    ) -> PollWrite:
        write = PollWrite()
        watches = self._watchlist()
        for item in due:
            details, watch = found.get(item.event_id), watches.get(item.event_id)
            if details is None or watch is None:
                continue
            moved = lifecycle_change(item.lifecycle, details.lifecycle)
            if moved is not None:
                change = news(item.event_id, watch.name, item.availability, now, lifecycle=moved)
                write.changes.append(change)
                write.deliveries.extend(deliveries_of(change, watch.targets, now))
        return write

    def _sales_news(self, due: Sequence[SalesDue], now: float) -> PollWrite:
        write = PollWrite()
        watches = self._watchlist()
        for item in due:
            watch = watches.get(item.event_id)
            if watch is None:
                continue
            for sale in sales_opened(item.sales, item.seen_until, now):
                change = news(item.event_id, watch.name, item.availability, now, sale=sale)
                write.changes.append(change)
                write.deliveries.extend(deliveries_of(change, watch.targets, now))
        return write

    @staticmethod
    async def _universal(client: DiscoveryClient, event_ids: list[str]) -> dict[str, EventDetails]:
        if not event_ids:
            return {}
        results = await client.search(Search(ids=tuple(event_ids)), most=len(event_ids))
        asked = set(event_ids)
        return {e.id: e for e in results.events if e.id in asked}

    @staticmethod
    async def _legacy(client: DiscoveryClient, due: DetailsDue) -> EventDetails | None:
        """The event whose Discovery link ends in this legacy ID, found by the words of
        the configured link."""
        keyword = slug_words(due.link)
        if keyword is None:
            return None
        results = await client.search(Search(keyword=keyword), most=50)
        suffix = f"/event/{due.event_id.lower()}"
        for event in results.events:
            if event.url and urlsplit(event.url).path.rstrip("/").lower().endswith(suffix):
                return dataclasses.replace(event, id=due.event_id)
        return None
