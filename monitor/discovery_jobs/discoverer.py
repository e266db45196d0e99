"""Watches by artist, venue or search: each `discover:` search runs every `every`, and the
events it finds join the watchlist, each until it starts.

A found event is watched with the search's `watch` settings and notifies nobody until its
first reading is known (as any new event); the search's notifiers hear once that new
events were found. An event missing from a later run is not dropped (sold-out events
vanish from Discovery's results); removing a search stops it adding events, and what it
added stays until it starts. Searches are claimed in the database, so replicas take turns.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from monitor.config import Config, EventConfig
from monitor.config.fields import REGIONS
from monitor.config.model import DiscoverConfig
from monitor.discovery.client import FILTERS, DiscoveryClient, Search
from monitor.discovery.details import EventDetails
from monitor.errors import UpstreamError
from monitor.markets import UNSUPPORTED_MARKETS
from monitor.models import NoticeKind
from monitor.store.accounts import notifier_name
from monitor.store.event_details import Details
from monitor.store.followed import Followed, Searches
from monitor.store.subscriptions import Subscription, Subscriptions, UserSearch
from monitor.store.watches import Origin, StoredWatch, Watches
from monitor.times import in_seconds, iso, local_time
from monitor.upstream.quota import MAX_DEPTH, MAX_PAGE_SIZE, search_plan
from monitor.wording import plural

logger = logging.getLogger(__name__)

LEASE = 300.0
RETRY = 600.0
KEEP_AFTER_START = 3600.0
"""A found event leaves the watchlist this long after it started; its history stays."""
FORGET_EVERY = 60.0

Notify = Callable[[Sequence[str], NoticeKind, str, list[str]], Awaitable[None]]
_EVENT = TypeAdapter(EventConfig)


class Discoverer:
    def __init__(
        self,
        watches: Watches,
        client: Callable[[], DiscoveryClient],
        *,
        config: Callable[[], Config],
        clock: Callable[[], float],
        notify: Notify,
        subscriptions: Subscriptions | None = None,
        channels: Callable[[str], Awaitable[list[str]]] | None = None,
        details: Details | None = None,
        followed: Searches | None = None,
    ) -> None:
        self._watches = watches
        self._followed = followed
        """Searches followed at runtime, run beside the configuration file's."""
        self._details = details
        """Where what a search's answer says of each event it adds is kept at once."""
        self._subscriptions = subscriptions
        """Users' own searches, and the subscriptions they find."""
        self._channels = channels
        """A user's channel names, by user ID: who hears that their search found shows."""
        self._client = client
        self._config = config
        self._clock = clock
        self._notify = notify
        self._forget_at = 0.0

    async def run(self) -> bool:
        """Forget what has started, run the searches that are due (the config file's and
        the users' own); whether the watchlist changed."""
        now = self._clock()
        changed = False
        if now >= self._forget_at:
            self._forget_at = now + FORGET_EVERY
            changed = await self._watches.forget_started(now - KEEP_AFTER_START) > 0
            if self._subscriptions is not None:
                changed |= await self._subscriptions.forget_started(now - KEEP_AFTER_START) > 0
        config = self._config()
        personal = [] if self._subscriptions is None else await self._subscriptions.searches()
        runtime = [] if self._followed is None else await self._followed.followed()
        everyone = [*config.discover, *runtime_searches(config, runtime)]
        sharing = len(everyone) + len(personal)
        for search in everyone:
            if await self._watches.claim_search(search.name, now, now + LEASE):
                changed |= await self._run(config, search, now, sharing)
        for mine in personal:
            key = notifier_name(mine.user, mine.name)
            if await self._watches.claim_search(key, now, now + LEASE):
                changed |= await self._run_personal(config, mine, key, now, sharing)
        return changed

    async def _find(
        self, config: Config, search: DiscoverConfig, key: str, now: float, sharing: int
    ) -> list[EventDetails] | None:
        """The events `search` finds now that can be watched; None when it failed. Its
        next run is scheduled either way."""
        query = Search(
            **search.model_dump(include=set(FILTERS)),
            starts_after=_moment(now),
            starts_before=_moment(now + search.window),
        )
        plan = search_plan(config, search.every, search.max_events, sharing)
        most = min(search.max_events, plan.pages * MAX_PAGE_SIZE)
        try:
            results = await self._client().search(query, most)
        except UpstreamError as exc:
            logger.warning("discover %s: the search failed (%s); trying again later", key, exc)
            await self._watches.searched(key, now, now + RETRY, 0)
            return None
        taken = len(results.events)
        if results.total > taken:
            if results.cut_by_depth:
                why = f"Discovery pages no deeper than {MAX_DEPTH:,}"
            elif most < search.max_events:
                why = f"a run spends {plan.pages} requests at most, within discovery.max_share"
            else:
                why = f"max_events is {search.max_events}"
            logger.warning(
                "discover %s: %s events match; only the first %d are taken (%s): narrow the search "
                "or shorten its window",
                key,
                f"{results.total:,}",
                taken,
                why,
            )
        await self._watches.searched(key, now, now + plan.every, results.total)
        return [event for event in results.events if _watchable(event, now)]

    async def _run(self, config: Config, search: DiscoverConfig, now: float, sharing: int) -> bool:
        events = await self._find(config, search, search.name, now, sharing)
        if events is None:
            return False
        configured = {event.id for event in config.events}
        found = [
            StoredWatch(
                event.id,
                Origin.DISCOVER,
                search.name,
                settings_of(search, event),
                now,
                event.starts_at,
            )
            for event in events
            if event.id not in configured
        ]
        added = await self._watches.add(found)
        await self._keep_details(config, events, added, now)
        if added:
            logger.info("discover %s: %d new events to watch", search.name, len(added))
            listeners = config.listeners(search.watch.notify, search.watch.tags)
            await self._announce(search, [e for e in events if e.id in added], listeners)
        return bool(added)

    async def _run_personal(
        self, config: Config, mine: UserSearch, key: str, now: float, sharing: int
    ) -> bool:
        """A user's search: what it finds becomes their subscriptions, and they alone hear
        that it found something."""
        assert self._subscriptions is not None  # personal searches come from it
        search = personal_search(mine)
        events = await self._find(config, search, key, now, sharing)
        if not events:
            return False
        wanted = mine.filters.get("when")
        found = [
            Subscription(
                mine.user_id,
                event.id,
                _found_settings(event, wanted),
                False,
                None,
                now,
                mine.name,
                event.starts_at,
            )
            for event in events
        ]
        added = await self._subscriptions.add_found(found)
        await self._keep_details(config, events, added, now)
        if added:
            logger.info("discover %s: %d new events for %s", key, len(added), mine.user)
            listeners = [] if self._channels is None else await self._channels(mine.user_id)
            names = [notifier_name(mine.user, channel) for channel in listeners]
            await self._announce(search, [e for e in events if e.id in added], names)
        return bool(added)

    async def _keep_details(
        self, config: Config, events: Sequence[EventDetails], added: Sequence[str], now: float
    ) -> None:
        if self._details is None or not added:
            return
        new = set(added)
        await self._details.found_by_search(
            [event for event in events if event.id in new], now, now + config.discovery.refresh
        )

    async def _announce(
        self, search: DiscoverConfig, events: list[EventDetails], listeners: Sequence[str]
    ) -> None:
        label = search.keyword or search.name
        subject = f"{plural(len(events), f'new {label} show')} found"
        lines = [
            " — ".join(
                part
                for part in (
                    event.name or event.id,
                    local_time(event.starts_at, event.timezone, "%Y-%m-%d %H:%M"),
                    ", ".join(p for p in (event.venue.name, event.venue.city) if p),
                )
                if part
            )
            + f" ({event.id})"
            for event in events
        ]
        await self._notify(listeners, NoticeKind.FOUND, subject, lines)


def _watchable(event: EventDetails, now: float) -> bool:
    """Events the API answers for, not over, not called off."""
    return (
        event.venue.country not in UNSUPPORTED_MARKETS
        and (event.starts_at is None or event.starts_at > now)
        and event.lifecycle != "canceled"
    )


def settings_of(search: DiscoverConfig, event: EventDetails) -> dict[str, Any]:
    """How a found event is watched, as an entry under `events:` would say it."""
    watch = search.watch
    settings: dict[str, Any] = {
        "id": event.id,
        "name": event.name,
        "region": event.venue.country if event.venue.country in REGIONS else None,
        "until": iso(event.starts_at) if event.starts_at is not None else None,
        "interval": _duration(watch.interval),
        "interval_by_status": {
            status.value: _duration(seconds)
            for status, seconds in (watch.interval_by_status or {}).items()
        }
        or None,
        "priority": watch.priority,
        "notify": list(watch.notify) if watch.notify is not None else None,
        "tags": list(watch.tags),
        "when": [
            rule.model_dump(mode="json", by_alias=True, exclude_defaults=True)
            for rule in watch.when
        ],
        "cooldown": _duration(watch.cooldown),
    }
    return {key: value for key, value in settings.items() if value is not None}


def runtime_searches(config: Config, followed: Sequence[Followed]) -> list[DiscoverConfig]:
    """The searches followed at runtime, as `discover:` entries; the configuration file's
    own search wins over one of the same name."""
    declared = {search.name for search in config.discover}
    found = []
    for search in followed:
        if search.name in declared:
            continue
        try:
            # The artist's name is a label for people; the search takes their ID.
            filters = {key: value for key, value in search.filters.items() if key != "artist"}
            entry = DiscoverConfig.model_validate({**filters, "name": search.name})
        except ValidationError as exc:
            logger.warning("discover %s: skipped: %s", search.name, exc.errors()[0]["msg"])
            continue
        notify = entry.watch.notify
        if notify is not None and not set(notify) <= config.notifiers.keys():
            # A notifier it names left the config file: the others still hear.
            kept = tuple(name for name in notify if name in config.notifiers)
            entry = entry.model_copy(
                update={"watch": entry.watch.model_copy(update={"notify": kept})}
            )
        found.append(entry)
    return found


def personal_search(mine: UserSearch) -> DiscoverConfig:
    """A user's search as a `discover:` entry: the same filters, window and limit."""
    filters = {key: value for key, value in mine.filters.items() if key in PERSONAL_FILTERS}
    return DiscoverConfig.model_validate({**filters, "name": mine.name})


PERSONAL_FILTERS = (*FILTERS, "window", "max_events")
"""What a user's search may set of a `discover:` entry: not `every` nor `watch`, which
spend everyone's quota and name the config file's notifiers."""


def _found_settings(event: EventDetails, wanted: object) -> dict[str, Any]:
    """A found event's subscription, as `/api/me/subscriptions` would have made it."""
    settings: dict[str, Any] = {"id": event.id}
    if event.venue.country in REGIONS:
        settings["region"] = event.venue.country
    if isinstance(wanted, list) and wanted:
        settings["when"] = wanted
    return settings


def _duration(seconds: float | None) -> str | None:
    return None if seconds is None else in_seconds(seconds)


def _moment(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)
