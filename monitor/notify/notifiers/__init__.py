"""Notifiers: one module per kind, registered by the `type` a config names them with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.notify.notifiers.apprise import AppriseNotifier
from monitor.notify.notifiers.base import Notifier
from monitor.notify.notifiers.email import EmailNotifier
from monitor.notify.notifiers.log import LogNotifier
from monitor.notify.notifiers.webhook import WebhookNotifier

NOTIFIER_KINDS: dict[str, Callable[[str, Any], Notifier]] = {
    LogNotifier.kind: LogNotifier,
    WebhookNotifier.kind: WebhookNotifier,
    EmailNotifier.kind: EmailNotifier,
    AppriseNotifier.kind: AppriseNotifier,
}


def build_notifier(name: str, config: Any) -> Notifier:
    return NOTIFIER_KINDS[config.type](name, config)
