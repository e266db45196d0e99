"""`check --live`: real requests with the configured key, to learn whether it works and
which watched IDs the API does not know."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import islice

import aiohttp

from monitor.config import Config
from monitor.errors import Held, InvalidApiKey, UpstreamError
from monitor.markets import PLAIN, RequestKind, request_kind
from monitor.models import Quota, Status
from monitor.upstream.health import Upstream
from monitor.upstream.ratelimit import TokenBucket
from monitor.upstream.sizing import START

DEFAULT_REQUESTS = 10
"""Requests `check --live` spends by default: each one counts against the daily quota."""
KEY_PROBE_ID = "inventory-monitor-key-check"
"""Asked for when nothing is watched: the answer only tells whether the key works."""


class RateOnly(TokenBucket):
    """The key's rate, and not the quota's pace: a check makes a few requests at once, and
    must not wait the many seconds a pace meant to spread the rest of the day's takes."""

    async def observe_quota(self, available: int | None, reset_at: float | None) -> None:
        return None


@dataclass(slots=True)
class LiveReport:
    requests: int = 0
    checked: int = 0
    watched: int = 0
    error: str | None = None
    key_refused: bool = False
    unknown: list[str] = field(default_factory=list)
    """Watched IDs the API answered UNKNOWN for: probably invalid event IDs."""
    missing: list[str] = field(default_factory=list)
    """Watched IDs left out of the answer."""
    quota: Quota = field(default_factory=Quota)
    latency_ms: float = 0.0


def live_batches(config: Config, max_requests: int | None) -> list[tuple[RequestKind, list[str]]]:
    """The watched IDs as the daemon would request them: per partition, in full batches."""
    by_partition: dict[str, list[str]] = {}
    for event in config.events:
        by_partition.setdefault(config.partition_of(event), []).append(event.id)
    size = config.ticketmaster.pinned_batch_size or START
    batches = (
        (request_kind(partition), ids[start : start + size])
        for partition, ids in by_partition.items()
        for start in range(0, len(ids), size)
    )
    return list(batches if max_requests is None else islice(batches, max_requests))


async def check_live(config: Config, max_requests: int | None = DEFAULT_REQUESTS) -> LiveReport:
    from monitor.wiring import PACING, client_for

    report = LiveReport(watched=len(config.events))
    upstream = Upstream(clock=time.time)
    async with aiohttp.ClientSession() as session:
        limiter = RateOnly(config.ticketmaster.requests_per_second * PACING)
        client = client_for(config, session, upstream=upstream, clock=time.time, limiter=limiter)
        started = time.monotonic()
        for kind, ids in live_batches(config, max_requests) or [(PLAIN, [KEY_PROBE_ID])]:
            report.requests += 1
            try:
                answers = await client.fetch(ids, kind)
            except InvalidApiKey as exc:
                report.key_refused, report.error = True, str(exc)
                break
            except (UpstreamError, Held) as exc:
                report.error = str(exc)
                break
            if ids == [KEY_PROBE_ID]:
                break
            report.checked += len(answers)
            report.missing.extend(i for i in ids if i not in answers)
            report.unknown.extend(
                event_id
                for event_id, item in answers.items()
                if item.get("status") == Status.UNKNOWN
            )
        report.latency_ms = (time.monotonic() - started) * 1000 / max(1, report.requests)
    report.quota = upstream.status.quota
    return report
