"""Notifiers: one module per kind, registered by the `type` a config names them with.

May import `notify` (rendering, documents), `config` and the base modules; never the
Ticketmaster client, the store or the poller. The kinds that need a library of their own
(Apprise, aiosmtplib, aiomqtt) import it when one is built: a daemon that only posts
webhooks never loads them.
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
from monitor.notify.notifiers.base import Notifier
from monitor.notify.notifiers.log import LogNotifier
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


def _email(name: str, config: EmailNotifierConfig) -> Notifier:
    from monitor.notify.notifiers.email import EmailNotifier

    return EmailNotifier(name, config)


def _apprise(name: str, config: AppriseNotifierConfig) -> Notifier:
    from monitor.notify.notifiers.apprise import AppriseNotifier

    return AppriseNotifier(name, config)


def _mqtt(name: str, config: MqttNotifierConfig) -> Notifier:
    from monitor.notify.notifiers.mqtt import MqttNotifier

    return MqttNotifier(name, config)


NOTIFIER_KINDS: dict[str, Factory] = {
    "log": _factory(LogNotifier, LogNotifierConfig),
    "webhook": _factory(WebhookNotifier, WebhookNotifierConfig),
    "email": _factory(_email, EmailNotifierConfig),
    "apprise": _factory(_apprise, AppriseNotifierConfig),
    "mqtt": _factory(_mqtt, MqttNotifierConfig),
}


def build_notifier(name: str, config: NotifierConfig) -> Notifier:
    return NOTIFIER_KINDS[config.type](name, config)
