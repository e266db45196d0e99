"""`check`: is a configuration valid, what does it ask of the quota, and (with --live) does
the API key work."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from monitor.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, Commands, command, load
from monitor.config import Config, config_warnings
from monitor.errors import MonitorError
from monitor.redact import redact
from monitor.store.event_details import ComingBurst
from monitor.times import DAY, iso
from monitor.wording import plural

if TYPE_CHECKING:
    from monitor.upstream.quota import QuotaPlan


def register(commands: Commands) -> None:
    check = command(
        commands,
        "check",
        _check,
        "validate a configuration and summarise it",
        examples=("check --config config/monitor.yaml", "check --strict --live"),
    )
    check.add_argument(
        "--live",
        action="store_true",
        help="also make real requests with the key: does it work, which IDs are unknown",
    )
    check.add_argument(
        "--strict",
        action="store_true",
        help="exit 2 on warnings too (a notifier that can never hear anything, say)",
    )
    check.add_argument(
        "--all",
        action="store_true",
        help="with --live, check every watched event (each request spends quota)",
    )


def _print_searches(config: Config, per_day: float) -> None:
    """What the `discover:` searches spend, their cap, and each search that the cap slows."""
    from monitor.times import format_duration
    from monitor.upstream.quota import MAX_PAGE_SIZE, search_plan

    discovery = config.discovery
    cap = discovery.max_share * config.ticketmaster.daily_quota
    print(
        f"             of which {per_day:,.1f} for {plural(len(config.discover), 'search')} "
        f"(at most {cap:,.0f}: discovery.max_share {discovery.max_share:.0%})"
    )
    for search in config.discover:
        plan = search_plan(config, search.every, search.max_events)
        most = min(search.max_events, plan.pages * MAX_PAGE_SIZE)
        if plan.every > search.every or most < search.max_events:
            print(
                f"  discover:  {search.name} runs every {format_duration(plan.every)} and "
                f"takes {most} events at most, to stay within its share"
            )


def _check(args: argparse.Namespace) -> int:
    from monitor.upstream.quota import plan_for, quota_warning, rate_warning

    config = load(args.config)
    found = from_database(config, time.time())
    # The daemon polls what is in force: the file's events and those the database adds.
    watched = found.in_force
    plan = plan_for(watched, bursts=len(found.bursts))
    print(f"{args.config}: valid")
    _print_summary(watched, plan, in_file={event.id for event in config.events})
    _print_discovery(config)
    _print_bursts(config, found.bursts)
    _print_listeners(watched, found.shares)
    warning = quota_warning(watched, plan)
    if warning:
        fitting = "fit_quota stretches them" if config.polling.fit_quota else "warning"
        print(f"{fitting}: {warning}", file=sys.stderr)
    too_fast = rate_warning(watched)
    if too_fast:
        print(f"warning: {too_fast}", file=sys.stderr)
    warned = (
        bool(config_warnings(config))
        or bool(warning and not config.polling.fit_quota)
        or bool(too_fast)
    )
    if args.strict and warned:
        print(f"{args.config}: the warnings above fail --strict", file=sys.stderr)
        return EXIT_CONFIG
    if args.live:
        return _check_live(config, every=args.all)
    return EXIT_OK


def _print_summary(config: Config, plan: QuotaPlan, *, in_file: set[str]) -> None:
    """Where requests go, what is stored where, and what the watchlist costs."""
    from monitor.times import format_duration

    tm = config.ticketmaster
    intervals = sorted({config.interval_of(e) for e in config.events})
    size = (
        "request size learnt from the API"
        if tm.pinned_batch_size is None
        else f"at most {plural(tm.pinned_batch_size, 'ID')} a request"
    )
    print(f"  upstream:  {tm.base_url} ({size})")
    print(f"  database:  {redact(config.database.url)}")
    in_force = {event.id for event in config.events}
    kept, added = len(in_force & in_file), len(in_force - in_file)
    more = f" ({kept} of the file's {len(in_file)}, {added} from the database)"
    print(f"  events:    {len(in_force)}{more if in_force != in_file else ''}")
    print(f"  intervals: {', '.join(format_duration(i) for i in intervals) or '-'}")
    print(
        f"  quota:     {plan.requests_per_day:,.0f} requests a day of {plan.quota:,} "
        f"({plan.requests_per_day / plan.quota:.0%}), at most {tm.requests_per_second:g} a second"
    )


def _print_discovery(config: Config) -> None:
    """What Discovery's event details and searches take of the quota."""
    from monitor.times import format_duration
    from monitor.upstream.quota import discover_per_day, discovery_per_day

    searching = discover_per_day(config)
    details = discovery_per_day(config) - searching
    if details:
        print(
            f"             of which {details:,.1f} for event details "
            f"(Discovery, every {format_duration(config.discovery.refresh)})"
        )
    if searching:
        _print_searches(config, searching)


def _print_bursts(config: Config, bursts: Sequence[ComingBurst]) -> None:
    """The sale bursts within a day, and what they cost."""
    from monitor.times import format_duration
    from monitor.upstream.quota import burst_requests

    burst = config.polling.sale_burst
    if bursts:
        cost = burst_requests(len(bursts), burst.before, burst.after, burst.interval)
        print(
            f"             of which at most {cost:,.0f} for {plural(len(bursts), 'burst')} "
            "within a day"
        )
    for coming in bursts:
        print(
            f"  burst:     {coming.name or coming.event_id} every "
            f"{format_duration(burst.interval)}, "
            f"{iso(coming.starts_at)} to {iso(coming.ends_at)}"
        )


def _print_listeners(config: Config, shares: dict[str, float]) -> None:
    """The notifiers with the events each hears of, and the users with what their
    subscriptions add to the requests a day."""
    for name, notifier in config.notifiers.items():
        listeners = sum(1 for e in config.events if name in config.targets_of(e))
        print(f"  notifier:  {name} ({notifier.type}), {plural(listeners, 'event')}")
    for user, per_day in sorted(shares.items(), key=lambda item: -item[1]):
        print(f"  user:      {user} adds {per_day:,.0f} requests a day")


def _database_exists(config: Config) -> bool:
    url = make_url(config.database.url)
    return url.get_backend_name() != "sqlite" or Path(url.database or ":memory:").is_file()


@dataclass(frozen=True)
class Stored:
    """What the database adds to the file: the watches in force (those added through the
    API, the CLI or a search, and the events users follow), the sale bursts due within a
    day, and what each user's subscriptions add to the requests a day."""

    in_force: Config
    bursts: list[ComingBurst]
    shares: dict[str, float]


def from_database(config: Config, now: float) -> Stored:
    """What the database says; the file alone when there is no database yet, or it is not
    migrated, or it cannot be read (`check` works offline)."""
    offline = Stored(config, [], {})
    if not _database_exists(config):
        return offline
    return asyncio.run(_read_stored(config, now, offline))


async def _read_stored(config: Config, now: float, offline: Stored) -> Stored:
    from monitor.in_force import quota_shares, with_watches
    from monitor.store.engine import HEAD_REVISION, create_engine, current_revision
    from monitor.store.event_details import Details
    from monitor.store.subscriptions import Subscriptions
    from monitor.store.watches import Watches
    from monitor.upstream.quota import request_capacity

    burst = config.polling.sale_burst
    engine = create_engine(config.database.url)
    try:
        async with engine.connect() as conn:
            if await conn.run_sync(current_revision) != HEAD_REVISION:
                return offline
        watches, subscriptions = Watches(engine), Subscriptions(engine)
        in_force = with_watches(config, await watches.stored(), await subscriptions.audience())
        bursts = (
            await Details(engine).coming_bursts(now, DAY, burst.before, burst.after)
            if burst.enabled
            else []
        )
        shares = await quota_shares(config, subscriptions, watches, request_capacity(config))
        return Stored(in_force, bursts, shares)
    except (SQLAlchemyError, OSError, MonitorError):
        return offline
    finally:
        await engine.dispose()


def _check_live(config: Config, *, every: bool) -> int:
    from monitor.cli.check_live import DEFAULT_REQUESTS, check_live

    report = asyncio.run(check_live(config, None if every else DEFAULT_REQUESTS))
    if report.key_refused:
        print(f"live: the API key is refused: {report.error}")
        return EXIT_FAILURE
    if report.error:
        print(f"live: the API did not answer properly: {report.error}")
        return EXIT_FAILURE
    print(f"live: the API key works ({report.requests} requests, {report.latency_ms:.0f} ms each)")
    quota = report.quota
    if quota.available is not None:
        resets = f", resets {iso(quota.reset_at)}" if quota.reset_at else ""
        limit = f"{quota.limit:,}" if quota.limit else "?"
        print(f"  quota left: {quota.available:,} of {limit}{resets}")
    if report.watched:
        rest = "" if report.checked >= report.watched else " (--all checks every one)"
        print(f"  checked:    {report.checked} of {report.watched} watched events{rest}")
    if report.unknown:
        print("  (an event in the UK or Ireland needs `region: GB` or `IE`; `url:` sets it)")
    for event_id in report.unknown:
        print(f"  {event_id}: answered UNKNOWN, probably an invalid event ID")
    for event_id in report.missing:
        print(f"  {event_id}: left out of the answer")
    return EXIT_OK
