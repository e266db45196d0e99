"""The watchlist as the poller sees it: one `Watch` per event, built from the configuration,
with what the poller asks of it as a whole kept up to date as watches come and go."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
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


class Watchlist(Mapping[str, Watch]):
    """The watches polled now, by event ID, and which of them are in a burst around a sale
    opening. `watches` is the plain dict, for the hot path."""

    def __init__(self, watches: Mapping[str, Watch] | None = None) -> None:
        self.watches: dict[str, Watch] = {}
        self.bursting: dict[str, float] = {}
        """Events polled at the burst interval around a sale opening, and until when."""
        self.id_bytes = 1
        """Bytes the longest watched ID takes in a request's URL, with its comma."""
        self.until_any = False
        """Whether any watch stops at an `until`."""
        self.shortest = math.inf
        """The shortest interval any watch may be polled at, by status or in a burst."""
        self.replace(watches or {})

    def __getitem__(self, event_id: str) -> Watch:
        return self.watches[event_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.watches)

    def __len__(self) -> int:
        return len(self.watches)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.watches

    def replace(self, watches: Mapping[str, Watch]) -> None:
        """A whole watchlist anew; bursts start again from their own batches."""
        self.watches = dict(watches)
        self.bursting.clear()
        self.id_bytes = max(map(len, self.watches), default=0) + 1
        self.until_any = any(watch.until is not None for watch in self.watches.values())
        self.shortest = min(map(fastest, self.watches.values()), default=math.inf)

    def set(self, event_id: str, watch: Watch | None) -> None:
        """One event watched anew, watched otherwise, or (None) no longer watched."""
        if watch is None:
            self.watches.pop(event_id, None)
            self.bursting.pop(event_id, None)
            return
        self.watches[event_id] = watch
        # These only ever err on the safe side here (a longer ID, an `until`, a faster
        # interval stay counted after the watch goes); `replace` recomputes them exactly.
        self.id_bytes = max(self.id_bytes, len(event_id) + 1)
        self.until_any = self.until_any or watch.until is not None
        self.shortest = min(self.shortest, fastest(watch))

    def burst(self, bursting: Mapping[str, float], interval: float) -> Bursts:
        """Take the events in a burst now; returns where those entering one are polled
        (never slower than their own fastest interval) and which leave theirs."""
        entering = {
            event_id: min(interval, fastest(self.watches[event_id]))
            for event_id in bursting
            if event_id not in self.bursting and event_id in self.watches
        }
        leaving = [e for e in self.bursting if e not in bursting and e in self.watches]
        self.shortest = min(self.shortest, *entering.values(), math.inf)
        self.bursting = {e: until for e, until in bursting.items() if e in self.watches}
        return Bursts(entering, leaving)


@dataclass(frozen=True, slots=True)
class Bursts:
    entering: dict[str, float]
    """Events entering a burst, with the interval they are polled at in it."""
    leaving: list[str]


def fastest(watch: Watch) -> float:
    return min([watch.interval, *watch.interval_by_status.values()])
