"""The daemon's parts, built from the configuration: watchlist, poller, upstream tracker
and API client. The daemon, the benchmarks and `check --live` build them the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import aiohttp

from monitor.config import Config
from monitor.metrics import Metrics
from monitor.models import Status, UpstreamStatus
from monitor.polling.detect import Rules
from monitor.polling.poller import Poller, RetryPolicy, Target, Watch, new_id
from monitor.store.repository import Repository, WatchEntry
from monitor.upstream.client import InventoryClient
from monitor.upstream.health import Upstream
from monitor.upstream.quota import QuotaPlan, stretched
from monitor.upstream.ratelimit import TokenBucket

# Requests go out a little under the allowed rate, so that network jitter never makes two
# of them arrive closer together than Ticketmaster's spike arrest allows.
PACING = 0.97


# Shared by every event without intervals by status: 100,000 empty dicts add up.
_NO_INTERVALS: Mapping[Status, float] = MappingProxyType({})


def watchlist(config: Config, plan: QuotaPlan | None = None) -> dict[str, Watch]:
    """The watched events; with a `plan`, their intervals stretched to fit its quota."""

    def fitted(interval: float, priority: int) -> float:
        return interval if plan is None else stretched(interval, plan.factor(priority))

    return {
        event.id: Watch(
            event.id,
            event.name,
            fitted(config.interval_of(event), event.priority),
            tuple(
                Target(
                    name,
                    config.rules_for(event, name),
                    hold=config.notifiers[name].group_window or 0.0,
                    cooldown=max(event.cooldown or 0.0, config.notifiers[name].cooldown or 0.0),
                )
                for name in config.targets_of(event)
            ),
            partition=config.partition_of(event),
            interval_by_status={
                status: fitted(interval, event.priority)
                for status, interval in config.intervals_by_status_of(event).items()
            }
            or _NO_INTERVALS,
            until=None if event.until is None else event.until.timestamp(),
        )
        for event in config.events
    }


async def sync_watchlist(
    repository: Repository, config: Config, watches: dict[str, Watch], now: float
) -> tuple[list[str], list[str]]:
    """Bring the database's watchlist and batches in line with `watches`."""
    return await repository.sync_watchlist(
        [
            WatchEntry(w.event_id, w.name, w.interval, w.partition, w.interval_by_status)
            for w in watches.values()
        ],
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
    upstream: Upstream,
    metrics: Metrics | None = None,
    on_changes: Callable[[], None] = lambda: None,
) -> Poller:
    tm, polling = config.ticketmaster, config.polling
    return Poller(
        repository,
        client,
        watches,
        rules=Rules(config.polling.unknown_after, config.polling.snapshot_every),
        batch_size=tm.batch_size,
        max_in_flight=tm.max_in_flight,
        # Long enough for a request with its timeout; after it, a crashed poll is retried.
        lease=2 * tm.timeout + 30.0,
        notify_baseline=polling.notify_baseline,
        clock=clock,
        upstream=upstream,
        retry=RetryPolicy(polling.retry.initial, polling.retry.max),
        metrics=metrics,
        on_changes=on_changes,
    )


def build_upstream(
    config: Config, clock: Callable[[], float], status: UpstreamStatus | None = None
) -> Upstream:
    polling = config.polling
    return Upstream(
        clock=clock,
        degraded_after=polling.degraded_after,
        invalid_key_retry=polling.invalid_key_retry,
        status=status,
    )


def client_for(
    config: Config,
    session: aiohttp.ClientSession,
    *,
    upstream: Upstream,
    clock: Callable[[], float],
    metrics: Metrics | None = None,
    limiter: TokenBucket | None = None,
) -> InventoryClient:
    tm = config.ticketmaster
    return InventoryClient(
        session,
        tm.base_url,
        tm.api_key.get_secret_value(),
        tm.timeout,
        limiter=limiter or TokenBucket(tm.requests_per_second * PACING),
        upstream=upstream,
        clock=clock,
        metrics=metrics,
    )
