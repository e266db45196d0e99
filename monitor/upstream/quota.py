"""The quota planner: how many requests a day a watchlist needs, and intervals that fit.

Requests never mix ticketing sources or regions. Within one partition, the events of the
shortest interval cost `ceil(n / capacity)` requests per interval, and the room those
requests have left carries events of longer intervals for free (see `store.batching`); the
next interval pays only for the events left over, and so on. An event with
`interval_by_status` is planned at its shortest interval: the plan must still hold on the
day a whole tour goes on sale.

To fit a quota, every event's intervals are stretched by `max(1, k / priority)` for the
smallest `k` that brings the plan under the quota less a safety margin: priority 1 events
stretch the most, priority 10 events ten times less.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from monitor.config import Config
from monitor.markets import IdKind
from monitor.models import Quota
from monitor.times import DAY, format_duration, iso
from monitor.upstream.sizing import START

SAFETY_MARGIN = 0.9
"""A fitted plan uses at most this share of the quota, leaving room for retries."""
URL_OVERHEAD = 100
"""Bytes of a request URL besides the base URL and the IDs: path, parameters, API key."""
_MAX_DOUBLINGS = 200
_MAX_HALVINGS = 50


class Demand(NamedTuple):
    """What one watched event asks of the quota."""

    interval: float
    """The shortest interval the event may be polled at."""
    partition: str
    priority: int = 1


def stretched(interval: float, factor: float) -> float:
    """`interval` made `factor` times longer, rounded up to three significant figures, so
    events of one interval still share batches and no interval grows by more than 1%
    through rounding (a watchlist polled every few milliseconds, in a benchmark, too)."""
    if factor <= 1.0:
        return interval
    exact = interval * factor
    step = 10.0 ** (math.floor(math.log10(exact)) - 2)
    return float(f"{math.ceil(round(exact / step, 6)) * step:.12g}")


def requests_per_day(demands: Iterable[Demand], capacity: int, scale: float = 1.0) -> float:
    """Requests a day for `demands` in requests of `capacity` IDs, every interval stretched
    for scale `scale`."""
    by_partition: dict[str, Counter[float]] = {}
    for d in demands:
        interval = stretched(d.interval, stretch_factor(scale, d.priority))
        by_partition.setdefault(d.partition, Counter())[interval] += 1
    total = 0.0
    for counts in by_partition.values():
        room = 0
        for interval in sorted(counts):
            riding = min(room, counts[interval])
            paying = counts[interval] - riding
            requests = math.ceil(paying / capacity)
            room += requests * capacity - paying - riding
            total += requests * DAY / interval
    return total


def request_capacity(config: Config, learnt: int | None = None) -> int:
    """How many IDs a request carries, for planning: the pinned or learnt size (or the
    first guess), and no more than fit the URL with the watchlist's IDs."""
    tm = config.ticketmaster
    size = tm.pinned_batch_size or learnt or START
    if not config.events:
        return size
    mean_id = sum(len(event.id) for event in config.events) / len(config.events)
    fitting = int((tm.max_url_bytes - len(tm.base_url) - URL_OVERHEAD) // (mean_id + 1))
    return max(1, min(size, fitting))


def stretch_factor(scale: float, priority: int) -> float:
    return max(1.0, scale / priority)


DETAILS_PER_REQUEST = 200
"""Universal IDs whose details one Discovery search fetches (see `discovery_jobs.refresher`)."""


def discovery_per_day(config: Config) -> float:
    """Discovery requests a day: for the details of `config`'s events, a search per 200
    universal IDs and one per legacy ID with a link (others cannot be looked up), every
    `discovery.refresh`; and the `discover:` searches."""
    if not config.discovery.enabled:
        return 0.0
    legacy = [event for event in config.events if event.kind is IdKind.LEGACY]
    searches = math.ceil((len(config.events) - len(legacy)) / DETAILS_PER_REQUEST)
    searches += sum(1 for event in legacy if event.url)
    return searches * DAY / config.discovery.refresh + discover_per_day(config)


MAX_PAGE_SIZE = 200
"""Results in one page of a Discovery search, at most."""
MAX_DEPTH = 1000
"""Discovery refuses pages past its 1,000th result (`size * page` must stay under it)."""


class SearchPlan(NamedTuple):
    """How a `discover:` search runs within its share of the quota."""

    pages: int
    """Pages one run fetches at most (200 results each)."""
    every: float
    """Seconds between runs: the search's own `every`, or longer to stay in its share."""


def search_plan(
    config: Config, every: float, max_events: int, searches: int | None = None
) -> SearchPlan:
    """A search's pages per run and time between runs, within its part of
    `discovery.max_share` of the daily quota (the share is split evenly among the
    `searches`, by default the config file's): fewer pages first, then longer between runs.
    However broad its filters, a search never spends more; and however many users keep
    searches of their own, they all spend no more than the share."""
    pages = math.ceil(min(max_events, MAX_DEPTH) / MAX_PAGE_SIZE)
    share = config.discovery.max_share * config.ticketmaster.daily_quota
    budget = share / max(1, len(config.discover) if searches is None else searches)
    runs = DAY / every
    if runs * pages > budget:
        pages = max(1, math.floor(budget / runs))
    return SearchPlan(pages, max(every, DAY * pages / budget))


def discover_per_day(config: Config) -> float:
    """Discovery requests a day for `discover:` searches, as their plans allow."""
    if not config.discovery.enabled:
        return 0.0
    plans = (search_plan(config, s.every, s.max_events) for s in config.discover)
    return sum(plan.pages * DAY / plan.every for plan in plans)


def burst_requests(bursts: int, before: float, after: float, interval: float) -> float:
    """Requests `bursts` bursts of polls cost at most (riders share them)."""
    return bursts * math.ceil((before + after) / interval)


@dataclass(frozen=True, slots=True)
class QuotaPlan:
    requests_per_day: float
    """Polls and Discovery requests together."""
    quota: int
    scale: float
    """1.0 when the plan fits with its margin; otherwise the smallest scale that does."""
    reserved_per_day: float = 0.0
    """Of `requests_per_day`: event details, and the bursts coming within a day."""

    @property
    def fits(self) -> bool:
        return self.requests_per_day <= self.quota

    def factor(self, priority: int) -> float:
        return stretch_factor(self.scale, priority)


def plan_quota(
    demands: Sequence[Demand], capacity: int, quota: int, reserved: float = 0.0
) -> QuotaPlan:
    """Polling stretched to fit what the `reserved` requests a day (event details, bursts)
    leave of the quota.
    Every loop here is bounded, whatever the figures: a garbled quota must never hang the
    daemon, a reload or `check`."""
    quota = max(1, quota)
    needed = requests_per_day(demands, capacity) + reserved
    budget = max(quota * SAFETY_MARGIN - reserved, quota * (1 - SAFETY_MARGIN))
    if needed - reserved <= budget:
        return QuotaPlan(needed, quota, 1.0, reserved)
    # Invariant: `high` fits the budget. Priority 10 stretches ten times less than 1.
    low, high = 1.0, needed / budget * 10
    for _ in range(_MAX_DOUBLINGS):
        if requests_per_day(demands, capacity, high) <= budget:
            break
        high *= 2
    for _ in range(_MAX_HALVINGS):
        middle = (low + high) / 2
        if requests_per_day(demands, capacity, middle) <= budget:
            high = middle
        else:
            low = middle
        if high - low < 1e-4:
            break
    return QuotaPlan(needed, quota, high, reserved)


def demands_of(config: Config) -> list[Demand]:
    return [
        Demand(
            min((config.interval_of(event), *config.intervals_by_status_of(event).values())),
            config.partition_of(event),
            event.priority,
        )
        for event in config.events
    ]


def plan_for(
    config: Config,
    quota: int | None = None,
    learnt_size: int | None = None,
    bursts: int = 0,
) -> QuotaPlan:
    """The plan for `config`'s watchlist against `quota` (by default the configured one),
    with requests as full as the request size (`learnt_size` unless pinned) allows, and
    room for event details and for the `bursts` around sale openings within a day."""
    burst = config.polling.sale_burst
    reserved = discovery_per_day(config)
    if burst.enabled:
        reserved += burst_requests(bursts, burst.before, burst.after, burst.interval)
    return plan_quota(
        demands_of(config),
        request_capacity(config, learnt_size),
        quota or config.ticketmaster.daily_quota,
        reserved,
    )


def quota_warning(config: Config, plan: QuotaPlan) -> str | None:
    """A warning naming the intervals that fit, when the watchlist needs more than the quota."""
    if plan.fits:
        return None
    advice = (
        ""
        if config.polling.fit_quota
        else " (or set polling.fit_quota: true to stretch them automatically)"
    )
    return (
        f"the watchlist needs {plan.requests_per_day:,.0f} requests a day but the daily quota "
        f"is {plan.quota:,}; intervals that fit: {_fitted(config, plan)}{advice}"
    )


def rate_warning(config: Config, learnt_size: int | None = None) -> str | None:
    """A warning naming the intervals that fit, when the watchlist needs more requests a
    second than `requests_per_second` allows: requests beyond it only wait their turn, so
    every event is polled less often than asked, and nobody is told."""
    rate = config.ticketmaster.requests_per_second
    capacity = request_capacity(config, learnt_size)
    plan = plan_quota(demands_of(config), capacity, math.floor(rate * DAY))
    if plan.fits:
        return None
    return (
        f"the watchlist needs {plan.requests_per_day / DAY:,.1f} requests a second "
        f"but ticketmaster.requests_per_second is {rate:g}; intervals that fit: "
        f"{_fitted(config, plan)}"
    )


def _fitted(config: Config, plan: QuotaPlan) -> str:
    """Each configured interval (and priority) with the one `plan` stretches it to."""
    fitted = sorted(
        {
            (config.interval_of(event), event.priority): stretched(
                config.interval_of(event), plan.factor(event.priority)
            )
            for event in config.events
        }.items()
    )
    return ", ".join(
        f"{format_duration(old)} -> {format_duration(new)}"
        + (f" (priority {priority})" if priority != 1 else "")
        for (old, priority), new in fitted[:8]
    )


def quota_pace(quota: Quota, now: float, rate: float) -> float | None:
    """Seconds between requests while what is left of the quota, spread until its reset,
    allows fewer than `rate` a second (see `upstream.ratelimit`); None when it does not, or
    when nothing is left (requests are held then, not paced)."""
    if not quota.available or quota.reset_at is None or quota.reset_at <= now:
        return None
    every = (quota.reset_at - now) / quota.available
    return every if every > 1 / rate else None


def pace_shown(quota: Quota, now: float, rate: float) -> str | None:
    """`quota_pace` as `status` and the dashboard show it (`700ms`, `2s`, `1m30s`)."""
    every = quota_pace(quota, now, rate)
    return None if every is None else _rounded(every)


def pace_note(
    quota: Quota, now: float, rate: float, events: int, ids_per_request: int
) -> str | None:
    """What pacing to the quota means for the watchlist, as the log says it when pacing
    begins: one request every so often, so each of `events` is polled about every so long.
    None while the quota does not hold requests back."""
    every = quota_pace(quota, now, rate)
    if every is None or quota.reset_at is None:
        return None
    requests = max(1, math.ceil(events / max(1, ids_per_request)))
    return (
        f"the quota left ({quota.available:,} requests) lasts until its reset at "
        f"{iso(quota.reset_at)} only at one request every {_rounded(every)}: each of the "
        f"{events:,} watched events is polled about every {_rounded(every * requests)}"
    )


def _rounded(seconds: float) -> str:
    return format_duration(round(seconds, 1) if seconds < 10 else float(round(seconds)))


def follower_shares(
    followers: Mapping[str, Sequence[tuple[str, float]]],
    polled_anyway: Mapping[str, float],
    capacity: int,
) -> dict[str, float]:
    """Requests a day each user's subscriptions add beyond what is polled anyway.

    `followers` gives each followed event's followers with the interval each asks for;
    `polled_anyway` the interval of each event the config file, the API or a search watches.
    An event costs its share of a request (1/`capacity`) at each poll; a user pays for what
    the event costs at their interval beyond what it would cost without them: all of it
    when they alone follow an event nothing else watches, the difference when they alone
    ask for the fastest interval, nothing when someone else asks as often. Shares never
    add up to more than the subscriptions cost."""
    shares: dict[str, float] = {}
    for event_id, wanted in followers.items():
        if not wanted:
            continue
        ordered = sorted(wanted, key=lambda pair: pair[1])
        user, fastest = ordered[0]
        if len(ordered) > 1 and ordered[1][1] <= fastest:
            continue  # someone else asks as often: nobody pays alone
        without = [pair[1] for pair in ordered[1:]]
        if event_id in polled_anyway:
            without.append(polled_anyway[event_id])
        cost_with = DAY / fastest / capacity
        cost_without = DAY / min(without) / capacity if without else 0.0
        shares[user] = shares.get(user, 0.0) + max(0.0, cost_with - cost_without)
    for pairs in followers.values():
        for user, _ in pairs:
            shares.setdefault(user, 0.0)
    return shares
