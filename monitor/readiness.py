"""Readiness as a pure rule: the figures in, the reasons for not being ready out."""

from __future__ import annotations

from monitor.models import Health

STALL_FACTOR = 3.0
"""A poll older than this many shortest intervals means polling has stalled."""
MIN_GRACE = 30.0
"""After start-up, polls get at least this long to succeed before a stall is declared."""

_UPSTREAM_REASONS = {
    Health.DEGRADED: "upstream_degraded",
    Health.QUOTA_EXHAUSTED: "quota_exhausted",
    Health.INVALID_API_KEY: "invalid_api_key",
}


def stall_limit(shortest_interval: float) -> float:
    return STALL_FACTOR * shortest_interval


def readiness(
    *,
    now: float,
    started_at: float,
    last_success_at: float | None,
    shortest_interval: float,
    health: Health,
    database_ok: bool,
    watching: bool,
    storage_failures: int = 0,
    unready_after: int = 3,
) -> list[str]:
    """Why the daemon is not ready; an empty list means ready.

    An upstream problem explains a stall by itself, so `scheduler_stalled` is only given
    when the upstream looks fine and polls still do not succeed. `storage_failures` are the
    poll cycles in a row whose claim or write the database refused (a full disk, a locked
    file): the upstream may answer every time, yet nothing is kept.
    """
    reasons = [] if database_ok else ["database_unavailable"]
    limit = stall_limit(shortest_interval)
    in_grace = now - started_at < max(limit, MIN_GRACE)
    if storage_failures >= unready_after and not in_grace:
        reasons.append("storage_failing")
    upstream = _UPSTREAM_REASONS.get(health)
    if upstream is not None:
        reasons.append(upstream)
    elif watching:
        last = last_success_at if last_success_at is not None else started_at
        if not in_grace and now - last > limit:
            reasons.append("scheduler_stalled")
    return reasons
