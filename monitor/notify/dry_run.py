"""A dry run of notification policy over stored changes: under a given configuration, which
notifier would have heard of each change, and when.

The same stages decide as in the daemon (routing, then the cooldown, then the group window),
run in event time instead of wall-clock time: a change is ready when it was observed, a
deferred one when its cooldown ends, and a grouped notifier's message goes out when the
window the first of them opened closes.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from monitor.models import Change, ChangeKind
from monitor.notify.cooldown import LastSent, cooldown
from monitor.notify.decisions import DeferUntil, Send
from monitor.notify.quiet import QuietHours, quiet
from monitor.notify.routing import Target, route, urgent


class Fate(StrEnum):
    SENT = "sent"
    SUPERSEDED = "superseded"
    NOT_ROUTED = "not routed"


class Planned(NamedTuple):
    """What the policy does with one change for one notifier."""

    change: Change
    notifier: str
    fate: Fate
    at: float | None = None
    """When the message carrying it goes out."""


@dataclass(order=True)
class _Ready:
    at: float
    order: int
    change: Change = field(compare=False)
    target: Target = field(compare=False)


def replay(
    changes: Sequence[Change],
    targets_of: Callable[[str], Sequence[Target]],
    notifiers: Sequence[str],
    group_windows: Mapping[str, float],
    quiet_hours: Mapping[str, QuietHours] | None = None,
) -> list[Planned]:
    """Every (change, notifier) pair's fate, in the order of the changes."""
    ordered = sorted(changes, key=lambda change: (change.observed_at, change.id))
    planned: list[Planned] = []
    for name in notifiers:
        routed: list[tuple[Change, Target]] = []
        for change in ordered:
            targets = [t for t in targets_of(change.event_id) if t.notifier == name]
            if route(targets, change):
                routed.append((change, targets[0]))
            else:
                planned.append(Planned(change, name, Fate.NOT_ROUTED))
        hours = (quiet_hours or {}).get(name)
        sends = _staged(routed, hours)
        window = group_windows.get(name, 0.0)
        planned.extend(_grouped(sends, window, name))
    position = {change.id: index for index, change in enumerate(ordered)}
    planned.sort(key=lambda p: (position[p.change.id], p.notifier))
    return planned


def _staged(
    routed: list[tuple[Change, Target]], hours: QuietHours | None
) -> list[tuple[Change, float | None]]:
    """When each change would pass quiet hours and the cooldown (None: superseded)."""
    queue = [_Ready(c.observed_at, index, c, t) for index, (c, t) in enumerate(routed)]
    heapq.heapify(queue)
    last_sent: dict[str, LastSent] = {}
    newest: dict[str, int] = {}
    """For each event, the newest change observed so far: it supersedes older ones."""
    arrived = 0
    decided: dict[str, float | None] = {}
    while queue:
        item = heapq.heappop(queue)
        change = item.change
        event = change.event_id
        # The queue runs in time order and `routed` is in observation order: one pass.
        while arrived < len(routed) and routed[arrived][0].observed_at <= item.at:
            newest[routed[arrived][0].event_id] = arrived
            arrived += 1
        decision = quiet(item.at, hours, urgent(item.target, change))
        managed = item.target.cooldown > 0 or hours is not None
        if isinstance(decision, Send) and managed and change.kind is ChangeKind.INVENTORY:
            decision = cooldown(
                change.current,
                item.target.cooldown,
                last_sent.get(event),
                newest.get(event, item.order) != item.order,
                item.at,
            )
        if isinstance(decision, Send):
            decided[change.id] = item.at
            last_sent[event] = LastSent(item.at, change.current)
        elif isinstance(decision, DeferUntil):
            heapq.heappush(queue, _Ready(decision.at, item.order, change, item.target))
        else:
            decided[change.id] = None
    return [(change, decided.get(change.id)) for change, _ in routed]


def _grouped(
    sends: list[tuple[Change, float | None]], window: float, notifier: str
) -> list[Planned]:
    """When each message goes out: at once, or when its group window closes. Deliveries
    that quiet hours release together share their time, and so their message."""
    planned: list[Planned] = []
    closes: float | None = None
    for change, ready in sorted(sends, key=lambda s: (s[1] is None, s[1] or 0.0)):
        if ready is None:
            planned.append(Planned(change, notifier, Fate.SUPERSEDED))
            continue
        goes = ready
        if window > 0:
            if closes is None or ready > closes:
                closes = ready + window
            goes = closes
        planned.append(Planned(change, notifier, Fate.SENT, goes))
    return planned
