"""Notifiers: one module per kind, registered by the `type` a config names them with.

May import `notify` (rendering, documents), `config` and the base modules; never the
Ticketmaster client, the store or the poller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from monitor.config import (
    AppriseNotifierConfig,
    EmailNotifierConfig,
    LogNotifierConfig,
    MqttNotifierConfig,
    NotifierConfig,
    WebhookNotifierConfig,
)
from monitor.notify.notifiers.apprise import AppriseNotifier
from monitor.notify.notifiers.base import Notifier
from monitor.notify.notifiers.email import EmailNotifier
from monitor.notify.notifiers.log import LogNotifier
from monitor.notify.notifiers.mqtt import MqttNotifier
from monitor.notify.notifiers.webhook import WebhookNotifier

Factory = Callable[[str, NotifierConfig], Notifier]
_Settings = TypeVar(
    "_Settings",
    LogNotifierConfig,
    WebhookNotifierConfig,
    EmailNotifierConfig,
    AppriseNotifierConfig,
    MqttNotifierConfig,
)


def _factory(notifier: Callable[[str, _Settings], Notifier], settings: type[_Settings]) -> Factory:
    def build(name: str, config: NotifierConfig) -> Notifier:
        if not isinstance(config, settings):
            raise TypeError(
                f"notifier {name!r}: {type(config).__name__} is not {settings.__name__}"
            )
        return notifier(name, config)

    return build


NOTIFIER_KINDS: dict[str, Factory] = {
    LogNotifier.kind: _factory(LogNotifier, LogNotifierConfig),
    WebhookNotifier.kind: _factory(WebhookNotifier, WebhookNotifierConfig),
    EmailNotifier.kind: _factory(EmailNotifier, EmailNotifierConfig),
    AppriseNotifier.kind: _factory(AppriseNotifier, AppriseNotifierConfig),
    MqttNotifier.kind: _factory(MqttNotifier, MqttNotifierConfig),
}


def build_notifier(name: str, config: NotifierConfig) -> Notifier:
    return NOTIFIER_KINDS[config.type](name, config)
