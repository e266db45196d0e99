"""Checks that span keys or sections, run once every model is valid on its own."""

from __future__ import annotations

from urllib.parse import urlsplit

from monitor.config.model import Config
from monitor.config.notifiers import EmailNotifierConfig, MqttNotifierConfig

Problem = tuple[tuple[str | int, ...], str]

MIN_SECRET = 4
"""Shorter secrets cannot be told apart from ordinary text, so logs could not be kept clean
of them."""
MIN_REMOTE_TOKEN = 16


def cross_checks(config: Config) -> list[Problem]:
    return [
        *_server(config),
        *_names(config),
        *_events(config),
        *_searches(config),
        *_secrets(config),
    ]


def _searches(config: Config) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, search in enumerate(config.discover):
        if search.name in seen:
            problems.append((("discover", index, "name"), f"duplicate search {search.name!r}"))
        seen.add(search.name)
        problems.extend(
            (("discover", index, "watch", "notify", position), _unknown(config, name))
            for position, name in enumerate(search.watch.notify or ())
            if name not in config.notifiers
        )
    return problems


def _server(config: Config) -> list[Problem]:
    server = config.server
    if not server.enabled or server.is_loopback:
        return []
    if server.token is None:
        return [
            (
                ("server", "host"),
                f"{server.host!r} is reachable from other machines: set server.token "
                "(e.g. ${MONITOR_TOKEN}) or bind to 127.0.0.1",
            )
        ]
    if len(server.token.get_secret_value()) < MIN_REMOTE_TOKEN:
        return [
            (
                ("server", "token"),
                f"a token guarding a server reachable from other machines needs at least "
                f"{MIN_REMOTE_TOKEN} characters",
            )
        ]
    return []


def _unknown(config: Config, name: str) -> str:
    known = ", ".join(sorted(config.notifiers)) or "none are configured"
    return f"no notifier is named {name!r} (known: {known})"


def _names(config: Config) -> list[Problem]:
    return [
        (("alerts", "notify", position), _unknown(config, name))
        for position, name in enumerate(config.alerts.notify)
        if name not in config.notifiers
    ]


def _events(config: Config) -> list[Problem]:
    problems: list[Problem] = []
    first_seen: dict[str, int] = {}
    for index, event in enumerate(config.events):
        if event.id in first_seen:
            problems.append(
                (
                    ("events", index, "id"),
                    f"duplicate event ID {event.id!r} (already at events[{first_seen[event.id]}])",
                )
            )
        first_seen.setdefault(event.id, index)
        problems.extend(
            (("events", index, "notify", position), _unknown(config, name))
            for position, name in enumerate(event.notify or ())
            if name not in config.notifiers
        )
    return problems


def _secrets(config: Config) -> list[Problem]:
    """Secrets the redactor can keep out of logs, and passwords that never cross a network
    in plain text unless the user says so."""
    token = config.server.token
    named: list[tuple[tuple[str | int, ...], str | None]] = [
        (("ticketmaster", "api_key"), config.ticketmaster.api_key.get_secret_value()),
        (("database", "url"), urlsplit(config.database.url).password),
        (("server", "token"), token.get_secret_value() if token else None),
    ]
    problems: list[Problem] = []
    for name, notifier in config.notifiers.items():
        if isinstance(notifier, MqttNotifierConfig):
            named.append((("notifiers", name, "url"), urlsplit(notifier.url).password))
        if isinstance(notifier, EmailNotifierConfig) and notifier.password is not None:
            named.append((("notifiers", name, "password"), notifier.password.get_secret_value()))
            if notifier.security == "none" and not notifier.allow_plaintext_auth:
                problems.append(
                    (
                        ("notifiers", name, "password"),
                        "with security: none the password would cross the network in plain "
                        "text; use starttls or tls (or set allow_plaintext_auth: true)",
                    )
                )
    problems.extend(
        (
            where,
            f"a secret needs at least {MIN_SECRET} characters, or it cannot be kept out of logs",
        )
        for where, secret in named
        if secret is not None and len(secret) < MIN_SECRET
    )
    return problems
