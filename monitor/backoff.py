"""Retry timing: a schedule of ceilings with full jitter, a server's Retry-After, and when to
give up."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from email.utils import parsedate_to_datetime


def retry_delay(
    attempt: int,
    schedule: Sequence[float],
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based).

    Full jitter: a uniform draw between 0 and the schedule's step for this attempt (the last
    step repeats), so many failed deliveries do not retry in lockstep. A receiver's
    Retry-After is a floor: we never come back sooner than it asked.
    """
    step = schedule[min(attempt, len(schedule)) - 1]
    return _jittered(step, retry_after, rng)


def exponential_delay(
    attempt: int,
    initial: float,
    maximum: float,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Like `retry_delay` with ceilings `initial`, twice that, four times... up to `maximum`."""
    return _jittered(min(maximum, initial * 2 ** min(attempt - 1, 60)), retry_after, rng)


def _jittered(ceiling: float, retry_after: float | None, rng: random.Random | None) -> float:
    delay = (rng or random).uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def gives_up(created_at: float, now: float, next_attempt_at: float, give_up_after: float) -> bool:
    """Whether the next attempt would fall after the give-up deadline."""
    return next_attempt_at - created_at > give_up_after or now - created_at > give_up_after


def retry_after_seconds(header: str | None, now: float) -> float | None:
    """A Retry-After header as seconds from `now`: it holds either a number of seconds or an
    HTTP date. None when absent or unreadable."""
    if header is None:
        return None
    try:
        seconds = float(header)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(header).timestamp() - now
        except (TypeError, ValueError, IndexError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None
