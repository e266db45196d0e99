"""The daemon's parts, built from the configuration: the stores, poller, upstream tracker
and API clients. The daemon, the benchmarks and `check --live` build them the same way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.config import Config
from monitor.discovery.client import DiscoveryClient
from monitor.metrics import Metrics
from monitor.models import UpstreamStatus, new_id
from monitor.polling.detect import Rules
from monitor.polling.poller import FOLLOW_EVERY, Poller, RetryPolicy
from monitor.polling.watchlist import Watch
from monitor.store.accounts import Accounts
from monitor.store.batching import unit_size
from monitor.store.event_details import Details
from monitor.store.followed import Searches
from monitor.store.limiter import SharedLimiter
from monitor.store.outbox import Outbox
from monitor.store.reads import Reads
from monitor.store.replicas import Replicas, replica_id
from monitor.store.repository import Repository
from monitor.store.subscriptions import Subscriptions
from monitor.store.watches import Watches
from monitor.upstream.health import Upstream
from monitor.upstream.inventory import InventoryClient, availability_endpoint
from monitor.upstream.ratelimit import Limiter, TokenBucket
from monitor.upstream.sizing import RequestSize

# Requests go out a little under the allowed rate, so that network jitter never makes two
# of them arrive closer together than Ticketmaster's spike arrest allows.
PACING = 0.97


@dataclass(frozen=True)
class Stores:
    """Every table's gateway, on one engine."""

    engine: AsyncEngine
    replicas: Replicas
    repository: Repository
    reads: Reads
    watches: Watches
    subscriptions: Subscriptions
    searches: Searches
    accounts: Accounts
    details: Details
    outbox: Outbox

    @classmethod
    def on(cls, engine: AsyncEngine, config: Config, config_path: Path | None) -> Stores:
        replicas = Replicas(engine, replica_id(config_path), lease_for(config))
        return cls(
            engine,
            replicas,
            Repository(engine, replica=replicas.id),
            Reads(engine),
            Watches(engine),
            Subscriptions(engine),
            Searches(engine),
            Accounts(engine),
            Details(engine),
            Outbox(engine),
        )


async def limiter_for(config: Config, engine: AsyncEngine) -> Limiter:
    """On PostgreSQL, where replicas share a database, one limiter paces them all;
    SQLite serves one process, which paces itself in memory."""
    rate = config.ticketmaster.requests_per_second * PACING
    if engine.dialect.name != "postgresql":
        return TokenBucket(rate)
    shared = SharedLimiter(engine, rate)
    await shared.ensure()
    return shared


def discovery_for(
    config: Config, session: aiohttp.ClientSession, limiter: Limiter
) -> DiscoveryClient:
    """Discovery draws on the same key, quota and rate as polling."""
    tm = config.ticketmaster
    return DiscoveryClient(
        session,
        tm.base_url,
        tm.api_key.get_secret_value(),
        tm.timeout,
        limiter=limiter,
        max_answer_bytes=tm.max_answer_bytes,
    )


def endpoint_of(config: Config) -> str:
    return availability_endpoint(config.ticketmaster.base_url)


async def sync_watchlist(
    repository: Repository, config: Config, watches: dict[str, Watch], now: float
) -> tuple[list[str], list[str]]:
    """Bring the database's watchlist and batches in line with `watches`."""
    return await repository.sync_watchlist(
        watches.values(),
        unit_size(config.ticketmaster.pinned_batch_size),
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
    before_claim: Callable[[], Awaitable[None]] | None = None,
    follow_every: float = FOLLOW_EVERY,
) -> Poller:
    tm, polling = config.ticketmaster, config.polling
    return Poller(
        repository,
        client,
        watches,
        rules=Rules(config.polling.unknown_after, config.polling.snapshot_every),
        unit_size=unit_size(tm.pinned_batch_size),
        max_in_flight=tm.max_in_flight,
        lease=lease_for(config),
        notify_baseline=polling.notify_baseline,
        clock=clock,
        upstream=upstream,
        retry=RetryPolicy(polling.retry.initial, polling.retry.max),
        metrics=metrics,
        on_changes=on_changes,
        before_claim=before_claim,
        follow_every=follow_every,
    )


def lease_for(config: Config) -> float:
    """How long a claimed batch is held: long enough for a request with its timeout. A live
    replica renews it; a replica gone silent loses it sooner (see `store.replicas`)."""
    return 2 * config.ticketmaster.timeout + 30.0


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
    limiter: Limiter | None = None,
    size: RequestSize | None = None,
) -> InventoryClient:
    """A client for `config`'s upstream; `size` is the request size learnt so far, shared
    by the clients that replace one another across reloads."""
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
        max_answer_bytes=tm.max_answer_bytes,
        max_retry_after=config.polling.retry.max,
        size=size
        or RequestSize.of(
            tm.pinned_batch_size, tm.max_url_bytes, grain=unit_size(tm.pinned_batch_size)
        ),
    )
