"""The watches in force: the config file's events, the watches stored by the API, the CLI
and searches, and what users follow, merged into the events one configuration polls.
Stored settings yield to the file's own entry; a followed event is polled at least as
often as its most eager follower asks."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from pydantic import ValidationError

from monitor.config import Config, EventConfig
from monitor.inputs import EVENT, entry_of
from monitor.notify.audience import interval_of
from monitor.store.subscriptions import Follower, Subscriptions
from monitor.store.watches import Origin, StoredWatch, Watches
from monitor.upstream.quota import follower_shares

logger = logging.getLogger(__name__)


def with_watches(
    config: Config,
    stored: Iterable[StoredWatch],
    audience: Mapping[str, Sequence[Follower]] | None = None,
) -> Config:
    """The events `config` watches: the file's own but those paused, the watches the
    database holds besides (added through the API, or found by searches) but those paused,
    and the events users follow. The file's own entries win over stored settings for the
    same event; an event followed is polled at least as often as a follower asks."""
    rows = {watch.event_id: watch for watch in stored}
    audience = audience or {}
    if not rows and not audience:
        return config
    followed = dict(audience)
    events = [
        event
        for configured in config.events
        if (
            event := watched_event(
                config, configured, rows.pop(configured.id, None), followed.pop(configured.id, ())
            )
        )
        is not None
    ]
    events.extend(
        event
        for watch in rows.values()
        if (event := watched_event(config, None, watch, followed.pop(watch.event_id, ())))
        is not None
    )
    events.extend(
        event
        for event_id, followers in followed.items()
        if (event := watched_event(config, None, None, followers, event_id)) is not None
    )
    return config.model_copy(update={"events": tuple(events)})


def watched_event(
    config: Config,
    configured: EventConfig | None,
    stored: StoredWatch | None,
    followers: Sequence[Follower] = (),
    event_id: str | None = None,
) -> EventConfig | None:
    """What one event is watched as: the file's entry (`configured`) unless paused, else the
    settings stored for an API or search watch unless paused, else what its followers
    gave; at the shortest interval any of them asks for. None if nothing watches it."""
    event = _watched(configured, stored)
    if not followers:
        return event
    fastest = interval_of(followers, config.polling.interval, config.users.min_interval)
    if event is None:
        return _followed(followers, event_id, fastest)
    if fastest is not None and fastest < config.interval_of(event):
        return EVENT.validate_python({**entry_of(event), "interval": _seconds(fastest)})
    return event


def _seconds(interval: float | None) -> str | None:
    return None if interval is None else f"{interval!r}s"


def held_in(event: EventConfig, country: str | None) -> EventConfig:
    """The event polled in the market of the `country` Discovery says it is held in, when
    nothing named its region: a show in GB or IE answers only to `region=UK`."""
    if country is None or event.region is not None or event.url:
        return event
    return EVENT.validate_python({**entry_of(event), "region": country})


def _watched(configured: EventConfig | None, stored: StoredWatch | None) -> EventConfig | None:
    if stored is not None and stored.paused:
        return None
    if configured is not None:
        return configured
    if stored is None or stored.origin is Origin.CONFIG:
        return None
    try:
        return EVENT.validate_python(stored.settings)
    except ValidationError as exc:
        logger.warning(
            "%s cannot be watched with the settings stored for it (%s)",
            stored.event_id,
            exc.errors()[0]["msg"],
        )
        return None


def _followed(
    followers: Sequence[Follower], event_id: str | None, interval: float | None
) -> EventConfig | None:
    """The event as its first follower gave it (by ID or link, in its region), heard of by
    its followers alone: no notifier of the config file."""
    given = {
        key: value
        for key, value in followers[0].settings.items()
        if key in ("id", "url", "region") and value is not None
    }
    try:
        return EVENT.validate_python({**given, "interval": _seconds(interval), "notify": []})
    except ValidationError as exc:
        logger.warning(
            "%s cannot be followed as it was given (%s)", event_id, exc.errors()[0]["msg"]
        )
        return None


async def quota_shares(
    config: Config, subscriptions: Subscriptions, watches: Watches, capacity: int
) -> dict[str, float]:
    """Requests a day each user's subscriptions add beyond what is polled anyway (see
    `follower_shares`), by user name; users who follow nothing are left out."""
    audience = await subscriptions.audience()
    if not audience:
        return {}
    stored = await watches.get_many(list(audience))
    configured = {event.id: event for event in config.events if event.id in audience}
    anyway: dict[str, float] = {}
    for event_id in audience:
        event = watched_event(config, configured.get(event_id), stored.get(event_id))
        if event is not None:
            anyway[event_id] = min(
                (config.interval_of(event), *config.intervals_by_status_of(event).values())
            )
    default, floor = config.polling.interval, config.users.min_interval
    followers = {
        event_id: [
            (follower.user, interval_of([follower], default, floor) or default)
            for follower in found
        ]
        for event_id, found in audience.items()
    }
    return follower_shares(followers, anyway, capacity)
