"""Time as people write it: durations such as `30s`, `5m`, `1h30m` or `1.5s`, RFC 3339
times, and a show's start in its venue's own time."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY = 86400.0
_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": DAY,
    "w": 7 * DAY,
    "y": 365 * DAY,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+")
_LONGEST = 100 * _UNITS["y"]


def parse_duration(text: str) -> float:
    """Seconds in `text`; raises ValueError for anything but a positive duration with units,
    at most a hundred years."""
    compact = text.strip().replace(" ", "")
    if len(compact) > 64 or not _WHOLE.fullmatch(compact):
        shown = text if len(text) <= 40 else f"{text[:40]}..."
        raise ValueError(f"invalid duration {shown!r}: use a number with s, m, h or d, e.g. 2h")
    seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(compact))
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r} (it must be longer than zero)")
    if seconds > _LONGEST:
        raise ValueError(f"invalid duration {text!r} (at most 100y)")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of `seconds` that parse_duration reads back."""
    if seconds < 1:
        in_ms = f"{_exact(seconds * 1000)}ms"
        return in_ms if parse_duration(in_ms) == seconds else in_seconds(seconds)
    if seconds != int(seconds):
        return in_seconds(seconds)
    parts, rest = [], int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def in_seconds(seconds: float) -> str:
    """`seconds` as a duration in seconds that parse_duration reads back exactly: "90s"."""
    return f"{_exact(seconds)}s"


def _exact(number: float) -> str:
    """Every digit a float holds (its shortest repr), never in exponent form."""
    return format(Decimal(repr(number)), "f").removesuffix(".0")


def next_poll(due_at: float | None, now: float, *, polling_now: bool = False) -> str:
    """When an event is polled next, as `status` and the dashboard say it: `in 8s`."""
    if polling_now:
        return "now"
    if due_at is None:
        return "not scheduled"
    if due_at <= now:
        return "due now"
    return f"in {format_duration(float(math.ceil(due_at - now)))}"


def to_next_beat(every: float, now: float) -> float:
    """Seconds from `now` to the next whole multiple of `every` on the clock (never zero).

    Periodic work waits for these beats rather than `every` from when it last ran, so that
    all of it with one period, or with periods that divide each other, runs in one wake of
    the process. In a process that mostly sleeps, each wake costs more than the work it does:
    the work's code and data have left the CPU's caches since the last one.
    """
    return every - now % every


def iso(timestamp: float) -> str:
    """RFC 3339 UTC with a Z, to the second: `2026-11-27T10:00:00Z`."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_time(at: float | None, timezone: str | None, form: str = "%a %d %b %Y, %H:%M") -> str:
    """A show's start as people read it: in the venue's own time."""
    if at is None:
        return ""
    try:
        zone = ZoneInfo(timezone) if timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    return datetime.fromtimestamp(at, zone).strftime(form)
