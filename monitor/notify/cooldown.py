"""Cooldown, a stage of notification policy: at most one message about an event per
notifier within `cooldown`, and then only the latest state, if it is new.

Pure: the outbox supplies what was last sent and whether a newer change is pending.
"""

from __future__ import annotations

from typing import NamedTuple

from monitor.models import Availability
from monitor.notify.decisions import SEND, Decision, DeferUntil, Drop

SUPERSEDED = Drop("superseded by a newer change")
NOTHING_NEW = Drop("the state is the one last sent")


class LastSent(NamedTuple):
    at: float
    availability: Availability


def cooldown(
    current: Availability,
    window: float,
    last_sent: LastSent | None,
    superseded_by_newer: bool,
    now: float,
) -> Decision:
    """Within the cooldown after the last message about the same event, a delivery waits;
    when the cooldown ends only the latest change goes out, and only if its state differs
    from what was last sent."""
    if superseded_by_newer:
        return SUPERSEDED
    if last_sent is None:
        return SEND
    ends = last_sent.at + window
    if now < ends:
        return DeferUntil(ends)
    return SEND if current != last_sent.availability else NOTHING_NEW
