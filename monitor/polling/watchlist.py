"""The watchlist as the poller sees it: one `Watch` per event, built from the configuration."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from monitor.config import Config, EventConfig
from monitor.models import Status
from monitor.notify.audience import targets_of
from monitor.notify.routing import Target
from monitor.store.records import BatchKey
from monitor.store.subscriptions import Follower
from monitor.upstream.quota import QuotaPlan, stretched

# Shared by every event without intervals by status: 100,000 empty dicts add up.
NO_INTERVALS: Mapping[Status, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Watch:
    """One watched event: how often it is polled, with which others, and who hears of it."""

    event_id: str
    name: str | None
    interval: float
    targets: tuple[Target, ...] = ()
    partition: str = ""
    interval_by_status: Mapping[Status, float] = field(default_factory=lambda: NO_INTERVALS)
    until: float | None = None
    """No polls after this time (epoch seconds)."""
    link: str | None = None
    """The event's page, as the configuration gave it (`url:`)."""
    market: str | None = None
    """Where the event is sold (its `region`), for links to the right site."""
    invalid_interval: float = 0.0
    """The least interval while Ticketmaster does not know the event."""

    def key_for(self, status: Status | None, *, invalid: bool = False) -> BatchKey:
        """The batch this event belongs in while `status` is its accepted status, and while
        Ticketmaster says it does not know it (`invalid`)."""
        interval = self.interval
        if status is not None:
            interval = self.interval_by_status.get(status, interval)
        if invalid:
            return _key(max(interval, self.invalid_interval), self.partition, invalid=True)
        return _key(interval, self.partition)


@functools.cache
def _key(interval: float, partition: str, *, invalid: bool = False) -> BatchKey:
    """One key object per interval and partition, however many events share it."""
    return BatchKey(interval, partition, invalid)


Shared = dict[tuple[Target, ...], tuple[Target, ...]]
"""One tuple of targets for every event with the same notifiers and rules: most events share
them, and 100,000 copies would cost some 18 MB."""


def watchlist(
    config: Config,
    plan: QuotaPlan | None = None,
    shared: Shared | None = None,
    audience: Mapping[str, Sequence[Follower]] | None = None,
) -> dict[str, Watch]:
    """The watched events; with a `plan`, their intervals stretched to fit its quota. Users
    who follow an event (`audience`) hear of it on their channels."""
    shared = {} if shared is None else shared
    audience = audience or {}
    return {
        event.id: watch_of(config, event, plan, shared, audience.get(event.id, ()))
        for event in config.events
    }


def watch_of(
    config: Config,
    event: EventConfig,
    plan: QuotaPlan | None,
    shared: Shared,
    followers: Sequence[Follower] = (),
) -> Watch:
    """One event's watch, with targets shared with every other watch that has the same:
    the config file's notifiers, and the channels of the users who follow it."""

    def fitted(interval: float) -> float:
        return interval if plan is None else stretched(interval, plan.factor(event.priority))

    by_status = config.intervals_by_status_of(event)
    targets = tuple(
        Target(
            name,
            config.rules_for(event, name),
            cooldown=max(event.cooldown or 0.0, config.notifiers[name].cooldown or 0.0),
        )
        for name in config.targets_of(event)
    )
    if followers:
        targets += targets_of(followers)
    return Watch(
        event.id,
        event.name,
        fitted(config.interval_of(event)),
        shared.setdefault(targets, targets),
        partition=config.partition_of(event),
        interval_by_status={s: fitted(i) for s, i in by_status.items()} or NO_INTERVALS,
        until=None if event.until is None else event.until.timestamp(),
        link=event.url,
        market=event.region,
        invalid_interval=config.polling.invalid_interval,
    )
