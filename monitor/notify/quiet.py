"""Quiet hours, a stage of notification policy: a notifier's deliveries that fall inside its
quiet window wait until the window ends, unless a rule marked `urgent` let them through.

Pure: the window is wall-clock times in a time zone, so it follows daylight saving time.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from monitor.config.notifiers import QuietHoursConfig
from monitor.notify.decisions import SEND, Decision, DeferUntil


class QuietHours(NamedTuple):
    starts: time
    ends: time
    zone: ZoneInfo

    @classmethod
    def of(cls, settings: QuietHoursConfig | None) -> QuietHours | None:
        if settings is None:
            return None
        return cls(
            time.fromisoformat(settings.from_),
            time.fromisoformat(settings.to),
            ZoneInfo(settings.timezone),
        )


def quiet_until(now: float, hours: QuietHours) -> float | None:
    """When the quiet window that `now` falls in ends; None outside the window."""
    local = datetime.fromtimestamp(now, hours.zone)
    starts, ends = hours.starts, hours.ends
    clock = local.time().replace(tzinfo=None)
    if starts == ends:
        return None
    if starts < ends:
        inside = starts <= clock < ends
        end_day = local.date()
    else:  # the window crosses midnight
        inside = clock >= starts or clock < ends
        end_day = local.date() + timedelta(days=1) if clock >= starts else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, ends, tzinfo=hours.zone).timestamp()


def quiet(now: float, hours: QuietHours | None, urgent: bool) -> Decision:
    if hours is None or urgent:
        return SEND
    ends = quiet_until(now, hours)
    return SEND if ends is None else DeferUntil(ends)
