"""Who among the users hears of an event's changes: each follower's channels, with the
rules their subscription sets. Pure, and tested with tables.

A subscription's `when` names the statuses a user wants to hear of ("tell me only when I
can buy"); without it, every change of status. Resale, lifecycle and sale-opening news
come too unless the subscription turns them off. A channel is reached once per change,
however the user came to follow the event.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from monitor.config import Rule
from monitor.models import ChangeKind
from monitor.notify.routing import Target
from monitor.store.accounts import Role, notifier_name
from monitor.store.subscriptions import Follower

NEWS = ("resale", "lifecycle", "sales")
"""The kinds of news a subscription hears unless it turns them off."""


def rules_of(settings: Mapping[str, Any]) -> tuple[Rule, ...]:
    """The rules a change must pass to reach a subscriber (any one of them will do)."""
    wanted = settings.get("when")
    rules = [Rule(field="status", to=tuple(wanted) if wanted else None)]
    if settings.get("resale", True):
        rules.append(Rule(field="resale_status"))
    if settings.get("lifecycle", True):
        rules.append(Rule(kind=(ChangeKind.LIFECYCLE,)))
    if settings.get("sales", True):
        rules.append(Rule(kind=(ChangeKind.SALE_OPENED,)))
    return tuple(rules)


def targets_of(followers: Iterable[Follower]) -> tuple[Target, ...]:
    """One target per channel that hears of the event."""
    targets: dict[str, Target] = {}
    for follower in followers:
        notify = follower.settings.get("notify")
        names: Sequence[str] = (
            follower.channels
            if notify is None
            else [name for name in notify if name in follower.channels]
        )
        rules = _rules(follower.settings)
        for channel in names:
            name = notifier_name(follower.user, channel)
            targets.setdefault(name, Target(name, (rules,)))
    return tuple(targets.values())


def interval_of(followers: Iterable[Follower], default: float, member_floor: float) -> float | None:
    """The shortest interval any follower asks for (a member's never under `member_floor`);
    None without followers."""
    intervals = [
        max(wanted, member_floor) if follower.role is Role.MEMBER else wanted
        for follower in followers
        for wanted in [follower.settings.get("interval") or default]
    ]
    return min(intervals, default=None)


def _rules(settings: Mapping[str, Any]) -> tuple[Rule, ...]:
    wanted = settings.get("when")
    news = tuple(bool(settings.get(name, True)) for name in NEWS)
    return _shared_rules(None if wanted is None else tuple(wanted), news)


@functools.cache
def _shared_rules(wanted: tuple[str, ...] | None, news: tuple[bool, ...]) -> tuple[Rule, ...]:
    """Most subscriptions share a handful of rule sets (at most 2,048 of them): each is
    built once."""
    return rules_of({"when": wanted, **dict(zip(NEWS, news, strict=True))})
