"""Routing, the first stage of notification policy: which notifiers hear of a change.

Pure and tested with tables. An event's targets are its notifiers, each with the rule sets
(the event's `when`, the notifier's `when`) that must all let a change through.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from monitor.config.notifiers import FieldName, Rule
from monitor.models import Change, ChangeKind


class Target(NamedTuple):
    """A notifier that may hear of an event, and how."""

    notifier: str
    rule_sets: tuple[tuple[Rule, ...], ...] = ()
    cooldown: float = 0.0
    """Seconds after a message about the event before the next one (see `notify.cooldown`)."""


def passes(rule: Rule, change: Change) -> bool:
    if change.kind is not ChangeKind.INVENTORY:
        return rule.kind is not None and change.kind in rule.kind
    if rule.kind is not None and ChangeKind.INVENTORY not in rule.kind:
        return False
    previous, current = change.previous, change.current
    fields: Sequence[FieldName] = (rule.field,) if rule.field else ("status", "resale_status")
    for name in fields:
        before = None if previous is None else getattr(previous, name).value
        if _moves(rule, before, getattr(current, name).value):
            return True
    return False


def _moves(rule: Rule, before: str | None, after: str) -> bool:
    """Whether a field going from `before` to `after` is a move the rule asks for."""
    if before == after:
        return False
    return (rule.from_ is None or before in rule.from_) and (rule.to is None or after in rule.to)


def allows(rules: Sequence[Rule], change: Change) -> bool:
    """No rules let every change through; otherwise any passing rule does."""
    return not rules or any(passes(rule, change) for rule in rules)


def routed(rule_sets: Sequence[Sequence[Rule]], change: Change) -> bool:
    """Whether every rule set (the event's, the notifier's) lets the change through."""
    return all(allows(rules, change) for rules in rule_sets)


def route(targets: Sequence[Target], change: Change) -> list[Target]:
    """The targets that hear of `change`."""
    return [target for target in targets if routed(target.rule_sets, change)]


def urgent(target: Target, change: Change) -> bool:
    """Whether a rule marked `urgent` lets the change through: it then ignores quiet hours."""
    return any(rule.urgent and passes(rule, change) for rules in target.rule_sets for rule in rules)
