"""Grouping, a stage of notification policy: a notifier with a `group_window` sends the
changes that pile up within the window as one message.

The window is derived from the outbox, not kept in memory: the oldest delivery waiting
for its first attempt opened it, so every replica sharing the database sees the same one.
A delivery due for a retry opens no window: it goes out when due, with whatever is due.
"""

from __future__ import annotations

from monitor.notify.decisions import SEND, Decision, DeferUntil, Drop

NOTHING_DUE = Drop("nothing is waiting")


def group_decision(
    oldest_new: float | None, oldest_retry: float | None, window: float, now: float
) -> Decision:
    """Whether a grouped notifier's waiting deliveries go out now.

    `oldest_new` is when the oldest delivery not yet attempted became due, `oldest_retry`
    when the earliest retry is due; either is None when there is none.
    """
    opened_window = None if oldest_new is None else oldest_new + window
    ready = [at for at in (opened_window, oldest_retry) if at is not None]
    if not ready:
        return NOTHING_DUE
    at = min(ready)
    return SEND if at <= now else DeferUntil(at)
