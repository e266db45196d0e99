"""Users' channels as routes of the dispatcher: one per channel, named `@user/channel`,
with the user's quiet hours. A channel rides the same outbox, retries and policy stages as
a notifier of the config file.

A user's routes are rebuilt when their row says they changed (`User.changed_at`): after
this process's own writes at once, after another replica's when the watch log names the
user (within a follow tick). A member's
channels never reach a private or loopback address unless `users.allow_private_targets`
says they may (see `netguard`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from monitor.config import AppriseNotifierConfig, WebhookNotifierConfig
from monitor.config.notifiers import QuietHoursConfig
from monitor.netguard import url_host
from monitor.notify.notifiers.base import Notifier
from monitor.notify.notifiers.webhook import WebhookNotifier
from monitor.notify.roster import Route
from monitor.redact import redactor
from monitor.store.accounts import Accounts, Channel, Role, User, notifier_name


def quiet_hours_of(settings: Mapping[str, Any]) -> QuietHoursConfig | None:
    """A user's quiet hours, in their time zone."""
    hours = settings.get("quiet_hours")
    if not hours:
        return None
    return QuietHoursConfig.model_validate({**hours, "timezone": settings.get("timezone") or "UTC"})


def channel_route(user: User, channel: Channel, *, guarded: bool) -> Route:
    name = notifier_name(user.name, channel.name)
    quiet = quiet_hours_of(user.settings)
    notifier: Notifier
    if channel.kind == "webhook":
        hook = WebhookNotifierConfig(
            type="webhook", url=channel.url, secret=channel.secret, quiet_hours=quiet
        )
        notifier = WebhookNotifier(name, hook, subscriber=user.name, guarded=guarded)
        return Route.of(notifier, hook)
    # Apprise and its plugins load only where some user has such a channel.
    from monitor.notify.notifiers.apprise import AppriseNotifier

    chat = AppriseNotifierConfig(type="apprise", urls=(channel.url,), quiet_hours=quiet)
    return Route.of(AppriseNotifier(name, chat, guarded=guarded), chat)


def secrets_of(channel: Channel) -> list[str]:
    """What of a channel must never be shown: its URL (Apprise URLs carry tokens, a
    webhook's may in its query) and a webhook's signing secret."""
    return [channel.url, *([channel.secret] if channel.secret else [])]


class ChannelRoster:
    def __init__(self, accounts: Accounts, allow_private: Callable[[], bool]) -> None:
        self._accounts = accounts
        self._allow_private = allow_private
        self._built: dict[str, tuple[float, dict[str, Route]]] = {}
        """Per user: when their row last changed as built, and their routes."""

    @property
    def has_users(self) -> bool:
        """Whether any user was known at the last look."""
        return bool(self._built)

    def routes(self) -> dict[str, Route]:
        return {name: route for _, routes in self._built.values() for name, route in routes.items()}

    async def refresh(self) -> list[Notifier] | None:
        """Rebuild the routes of users written to since the last look, and drop those of
        users gone; returns the notifiers replaced (to close once their sends are done),
        or None when nothing changed."""
        everyone = {user.name: user for user in await self._accounts.users()}
        changed = [
            user
            for user in everyone.values()
            if self._built.get(user.name, (None,))[0] != user.changed_at
        ]
        gone = [name for name in self._built if name not in everyone]
        if not changed and not gone:
            return None
        replaced = [route.notifier for name in gone for route in self._built.pop(name)[1].values()]
        found = await self._accounts.channels_of([user.id for user in changed])
        _hide_secrets(found)
        for user in changed:
            replaced.extend(self._rebuild(user, found.get(user.id, [])))
        return replaced

    def _rebuild(self, user: User, channels: list[Channel]) -> list[Notifier]:
        """The user's routes from `channels`; returns the notifiers they replace."""
        guarded = user.role is Role.MEMBER and not self._allow_private()
        routes = {
            notifier_name(user.name, channel.name): channel_route(user, channel, guarded=guarded)
            for channel in channels
        }
        _, before = self._built.get(user.name, (0.0, {}))
        self._built[user.name] = (user.changed_at, routes)
        return [route.notifier for route in before.values()]

    async def aclose(self) -> None:
        for _, routes in self._built.values():
            for route in routes.values():
                await route.notifier.aclose()
        self._built.clear()


def _hide_secrets(found: Mapping[str, list[Channel]]) -> None:
    """Apprise URLs carry tokens, webhooks their secrets: never in a log line or an error,
    as the config file's own (one pattern rebuilt for all of them at once)."""
    redactor.add(
        secret for channels in found.values() for c in channels for secret in secrets_of(c)
    )


def channel_document(channel: Channel, *, secret: bool = False) -> dict[str, Any]:
    """A channel as its owner sees it: the URL's scheme and host only, since Apprise URLs
    carry tokens; a webhook's secret only in the answer that created it."""
    document: dict[str, Any] = {
        "name": channel.name,
        "type": channel.kind,
        "target": masked(channel.url),
    }
    if secret:
        document["secret"] = channel.secret
    return document


def masked(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname if url_host(url) else None
    except ValueError:
        return "…"
    return f"{parts.scheme}://{host or '…'}/…" if parts.scheme else "…"
