"""Who hears what: filters on a change, pure and tested with tables."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.config.notifiers import FieldName, Rule
from monitor.models import Availability


def passes(rule: Rule, previous: Availability | None, current: Availability) -> bool:
    fields: Sequence[FieldName] = (rule.field,) if rule.field else ("status", "resale_status")
    for name in fields:
        before = None if previous is None else getattr(previous, name).value
        after = getattr(current, name).value
        if before == after:
            continue
        if rule.from_ is not None and before not in rule.from_:
            continue
        if rule.to is not None and after not in rule.to:
            continue
        return True
    return False


def allows(rules: Sequence[Rule], previous: Availability | None, current: Availability) -> bool:
    """No rules let every change through; otherwise any passing rule does."""
    return not rules or any(passes(rule, previous, current) for rule in rules)


def routed(
    rule_sets: Sequence[Sequence[Rule]], previous: Availability | None, current: Availability
) -> bool:
    """Whether every rule set (the event's, the notifier's) lets the change through."""
    return all(allows(rules, previous, current) for rules in rule_sets)


def cooldown_decision(
    current: Availability,
    cooldown: float,
    last_sent: tuple[float, Availability] | None,
    superseded_by_newer: bool,
    now: float,
) -> float | bool:
    """What to do with a due delivery under a cooldown: True to send it, False to drop it as
    superseded, or the time to send it at instead.

    Within the cooldown after the last message about the same event, a delivery waits; when
    the cooldown ends only the latest change goes out, and only if its state still differs
    from what was last sent.
    """
    if superseded_by_newer:
        return False
    if last_sent is None:
        return True
    sent_at, sent_state = last_sent
    if now < sent_at + cooldown:
        return sent_at + cooldown
    return current != sent_state
