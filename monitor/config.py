"""The YAML configuration: loading, `${VAR}` interpolation, validation and readable errors."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import orjson
import yaml
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_core import PydanticCustomError

from monitor.durations import parse_duration
from monitor.errors import ConfigError
from monitor.models import Status
from monitor.rules import Rule
from monitor.templating import check_template

# libyaml's loader when PyYAML was built with it: several times faster on large watchlists.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _duration(value: object) -> object:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise PydanticCustomError("duration", str(exc)) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("duration", "expected a duration such as 30s, 5m or 1h")
    raise PydanticCustomError(
        "duration", f"invalid duration {value!r} (add a unit: {value}s, {value}m, ...)"
    )


Duration = Annotated[float, BeforeValidator(_duration)]


def _blank_is_none(value: object) -> object:
    return None if value == "" else value


BlankIsNone = BeforeValidator(_blank_is_none)
"""`key: ${VAR:-}` leaves an optional setting off when VAR is unset."""
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", min_length=1, max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TicketmasterConfig(_Model):
    base_url: str = "https://app.ticketmaster.com"
    api_key: SecretStr
    batch_size: int = Field(100, ge=1, le=1000)
    timeout: Duration = 10.0
    max_in_flight: int = Field(4, ge=1, le=64)
    requests_per_second: float = Field(5.0, gt=0)
    daily_quota: int = Field(5000, ge=1)
    """Requests a day the key may make; the API's `Rate-Limit` header overrides it once seen."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_http_url(value).rstrip("/")


class DatabaseConfig(_Model):
    url: str = "sqlite+aiosqlite:///data/monitor.db"


class PollRetryConfig(_Model):
    initial: Duration = 2.0
    """The longest wait before retrying a failed batch the first time; it doubles after that."""
    max: Duration = 300.0


class PollingConfig(_Model):
    interval: Duration = 60.0
    interval_by_status: dict[Status, Duration] = Field(default_factory=dict)
    unknown_after: int = Field(3, ge=1)
    snapshot_every: Duration = 3600.0
    notify_baseline: bool = False
    fit_quota: bool = False
    """Stretch intervals (less for higher `priority`) until the plan fits the daily quota."""
    retry: PollRetryConfig = PollRetryConfig()
    degraded_after: int = Field(3, ge=1)
    """Failed requests in a row after which the upstream counts as degraded."""
    invalid_key_retry: Duration = 300.0


class ServerConfig(_Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    """0 picks a free port (the log says which)."""
    token: Annotated[SecretStr | None, BlankIsNone] = None
    """Bearer token for everything but /healthz; required when `host` is not loopback."""
    refresh: Duration = 5.0
    """How often the dashboard fetches fresh figures."""

    @property
    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


class AlertsConfig(_Model):
    notify: tuple[Name, ...] = ()
    """Notifiers that hear when the watcher itself stops working, and when it recovers."""
    stalled_after: Duration | None = None
    """No successful poll for this long is an alert; default 3x the shortest interval."""
    heartbeat_url: Annotated[str | None, BlankIsNone] = None
    """Pinged after successful polls (at most once a minute): a dead man's switch."""
    daily_summary: Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] | None = None
    """UTC time of day ("08:00") for a summary message through `notify`."""

    @field_validator("heartbeat_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_http_url(value)


class RetentionConfig(_Model):
    snapshots: Duration | None = 90 * 86400.0
    """Snapshot rows older than this are pruned (None keeps them all)."""
    changes: Duration | None = None
    """Changes (and their delivered or dead deliveries) older than this are pruned."""


class LoggingConfig(_Model):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class RetryConfig(_Model):
    backoff: tuple[Duration, ...] = Field((5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0), min_length=1)
    """The longest wait before attempt 2, 3, ...; the last step repeats."""
    give_up_after: Duration = 86400.0


Template = Annotated[str, AfterValidator(check_template)]


def _as_rules(value: object) -> object:
    return [value] if isinstance(value, dict) else value


Rules = Annotated[tuple[Rule, ...], BeforeValidator(_as_rules)]
"""`when:` takes one rule or a list of rules (any of which lets a change through)."""


class _NotifierConfig(_Model):
    retry: RetryConfig = RetryConfig()
    concurrency: int = Field(4, ge=1, le=100)
    timeout: Duration = 15.0
    when: Rules = ()
    tags: tuple[str, ...] | None = None
    """Hear only events carrying one of these tags (unless an event names this notifier)."""
    cooldown: Duration | None = None
    group_window: Duration | None = None

    def secrets(self) -> list[str]:
        return []


class LogNotifierConfig(_NotifierConfig):
    type: Literal["log"]
    body: Template | None = None


class EmailNotifierConfig(_NotifierConfig):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["email"]
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    verify: bool = True
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+$")
    to: tuple[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")], ...] = Field(min_length=1)
    timeout: Duration = 30.0
    subject: Template | None = None
    body: Template | None = None
    html: Template | None = None

    def secrets(self) -> list[str]:
        return [] if self.password is None else [self.password.get_secret_value()]


class AppriseNotifierConfig(_NotifierConfig):
    type: Literal["apprise"]
    urls: tuple[str, ...] = Field(min_length=1)
    subject: Template | None = None
    body: Template | None = None

    def secrets(self) -> list[str]:
        # Apprise URLs carry tokens in their paths (discord://id/TOKEN, tgram://BOT_TOKEN/...).
        return list(self.urls)


class WebhookNotifierConfig(_NotifierConfig):
    type: Literal["webhook"]
    url: str
    secret: Annotated[SecretStr | None, BlankIsNone] = None
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_http_url(value)

    @field_validator("secret")
    @classmethod
    def _standard_webhooks_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value()
        try:
            key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            key = b""
        if not text.startswith("whsec_") or len(key) < 16:
            raise PydanticCustomError(
                "secret", "expected 'whsec_' followed by at least 16 base64-encoded bytes"
            )
        return value

    def secrets(self) -> list[str]:
        found = [self.url] if urlsplit(self.url).query else []
        if self.secret is not None:
            found.append(self.secret.get_secret_value())
        return found


NOTIFIER_TYPES = ("log", "webhook", "email", "apprise")
NotifierConfig = Annotated[
    LogNotifierConfig | WebhookNotifierConfig | EmailNotifierConfig | AppriseNotifierConfig,
    Field(discriminator="type"),
]


SOURCES = ("ticketmaster", "tmr", "ticketweb")
REGIONS = (
    "AT", "AU", "BE", "CA", "CH", "CZ", "DE", "DK", "ES", "FI",
    "GB", "IE", "MX", "NL", "NO", "NZ", "PL", "SE", "US",
)  # fmt: skip


def _one_of(choices: tuple[str, ...], normalise: str) -> Any:
    def check(value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.lower() if normalise == "lower" else value.upper()
        if text not in choices:
            raise PydanticCustomError(
                "choice", f"expected one of {', '.join(choices)}, got {value!r}"
            )
        return text

    return BeforeValidator(check)


Source = Annotated[str, _one_of(SOURCES, "lower")]
Region = Annotated[str, _one_of(REGIONS, "upper")]


def _utc(value: datetime) -> datetime:
    # A date-time without an offset is read as UTC, the way the API reports times.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# A slotted dataclass, not a model: a watchlist may hold 100,000 of them, and a model
# instance carries a dict and a set of its own (about 1 KB each).
@pydantic_dataclass(
    frozen=True,
    slots=True,
    config=ConfigDict(extra="forbid", coerce_numbers_to_str=True, populate_by_name=True),
)
class EventConfig:
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", min_length=1, max_length=64)]
    name: str | None = None
    interval: Duration | None = None
    interval_by_status: dict[Status, Duration] | None = None
    source: Source | None = None
    region: Region | None = Field(default=None, validation_alias=AliasChoices("region", "market"))
    priority: int = Field(default=1, ge=1, le=10)
    """How much less this event's interval is stretched to fit the quota (10: least)."""
    until: Annotated[datetime, AfterValidator(_utc)] | None = None
    """Stop polling after this date-time (e.g. when the show starts)."""
    notify: tuple[Name, ...] | None = None
    tags: tuple[str, ...] = ()
    when: Rules = ()
    cooldown: Duration | None = None


class Config(_Model):
    ticketmaster: TicketmasterConfig
    database: DatabaseConfig = DatabaseConfig()
    polling: PollingConfig = PollingConfig()
    logging: LoggingConfig = LoggingConfig()
    server: ServerConfig = ServerConfig()
    alerts: AlertsConfig = AlertsConfig()
    retention: RetentionConfig = RetentionConfig()
    notifiers: dict[Name, NotifierConfig] = Field(default_factory=dict)
    events: tuple[EventConfig, ...] = ()

    def interval_of(self, event: EventConfig) -> float:
        return event.interval or self.polling.interval

    @staticmethod
    def partition_of(event: EventConfig) -> str:
        """Events of different ticketing sources or regions never share a request."""
        if event.source is None and event.region is None:
            return ""
        return f"{event.source or ''}/{event.region or ''}"

    def intervals_by_status_of(self, event: EventConfig) -> dict[Status, float]:
        if event.interval_by_status is not None:
            return event.interval_by_status
        return self.polling.interval_by_status

    def targets_of(self, event: EventConfig) -> tuple[str, ...]:
        """The notifiers that hear about changes to `event` (before `when` rules)."""
        if event.notify is not None:
            return event.notify
        return tuple(
            name
            for name, notifier in self.notifiers.items()
            if notifier.tags is None or set(notifier.tags) & set(event.tags)
        )

    def rules_for(self, event: EventConfig, notifier: str) -> tuple[tuple[Rule, ...], ...]:
        """Rule sets that must each let a change through: the event's, then the notifier's."""
        return (event.when, self.notifiers[notifier].when)

    def secrets(self) -> list[str]:
        """Every configured value that must never reach a log line, an error or the database."""
        found = [self.ticketmaster.api_key.get_secret_value()]
        database_password = urlsplit(self.database.url).password
        if database_password:
            found.append(database_password)
        for notifier in self.notifiers.values():
            found.extend(notifier.secrets())
        if self.server.token is not None:
            found.append(self.server.token.get_secret_value())
        if self.alerts.heartbeat_url:
            # Ping URLs carry their secret in the path (https://hc-ping.com/<uuid>).
            found.append(self.alerts.heartbeat_url)
        return found

    def shortest_interval(self) -> float:
        intervals = [self.interval_of(e) for e in self.events]
        for event in self.events:
            intervals.extend(self.intervals_by_status_of(event).values())
        return min(intervals, default=self.polling.interval)


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PydanticCustomError("url", f"expected an http(s) URL, got {value!r}")
    return value


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read, interpolate and validate the file at `path`; raise ConfigError naming every problem."""
    source = str(path)
    env = os.environ if environ is None else environ
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [f" cannot read the file: {exc.strerror}"]) from None
    return parse_config(text, source, env)


def _load_tree(text: str) -> Any:
    """The document as Python data. A JSON document (JSON is YAML) skips PyYAML's node
    graph, which for a generated watchlist of 100,000 events costs over 100 MB at start."""
    if text.lstrip().startswith("{"):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # YAML in flow style, or broken JSON: PyYAML says which, with a line
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def parse_config(text: str, source: str, environ: Mapping[str, str]) -> Config:
    try:
        raw = _load_tree(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{line} invalid YAML: {problem}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, [" expected a mapping of sections at the top of the file"])

    missing: list[tuple[tuple[str | int, ...], str]] = []
    data = _interpolate(raw, (), environ, missing)
    problems: list[tuple[tuple[str | int, ...], str]] = [
        (loc, f"environment variable ${{{name}}} is not set (and has no default)")
        for loc, name in missing
    ]
    config: Config | None = None
    if not problems:
        try:
            config = Config.model_validate(data)
        except ValidationError as exc:
            problems = [(_clean_loc(err["loc"]), _message(err)) for err in exc.errors()]
        else:
            problems = _cross_checks(config)
    if problems or config is None:
        # Only now pay for a node tree: it gives each problem its line.
        root = yaml.compose(text, Loader=_Loader)
        raise ConfigError(source, [_problem(root, loc, message) for loc, message in problems])
    return config


def config_warnings(config: Config) -> list[str]:
    """Settings that work but are probably not what the user wants."""
    warnings = []
    if config.events and not config.notifiers:
        warnings.append("no notifiers are configured: changes are stored but nobody is told")
    return warnings


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(
    node: Any,
    loc: tuple[str | int, ...],
    environ: Mapping[str, str],
    missing: list[tuple[tuple[str | int, ...], str]],
) -> Any:
    """Replace `${VAR}` in every string of the freshly loaded tree, in place.

    In place, because a watchlist of 100,000 events would otherwise exist twice at once.
    """
    if isinstance(node, dict):
        for key, value in node.items():
            node[key] = _interpolate(value, (*loc, key), environ, missing)
        return node
    if isinstance(node, list):
        for index, value in enumerate(node):
            node[index] = _interpolate(value, (*loc, index), environ, missing)
        return node
    if not isinstance(node, str) or "$" not in node:
        return node

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                missing.append((loc, name))
                return ""
            return default
        return value

    return _VAR.sub(substitute, node)


def _cross_checks(config: Config) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    server = config.server
    if server.enabled and server.token is None and not server.is_loopback:
        problems.append(
            (
                ("server", "host"),
                f"{server.host!r} is reachable from other machines: set server.token "
                "(e.g. ${MONITOR_TOKEN}) or bind to 127.0.0.1",
            )
        )
    for position, name in enumerate(config.alerts.notify):
        if name not in config.notifiers:
            known = ", ".join(sorted(config.notifiers)) or "none are configured"
            problems.append(
                (("alerts", "notify", position), f"no notifier is named {name!r} (known: {known})")
            )
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
        for position, name in enumerate(event.notify or ()):
            if name not in config.notifiers:
                known = ", ".join(sorted(config.notifiers)) or "none are configured"
                problems.append(
                    (
                        ("events", index, "notify", position),
                        f"no notifier is named {name!r} (known: {known})",
                    )
                )
    return problems


def _clean_loc(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    # A tagged union puts the tag ("webhook") into the location; the user never wrote it.
    if len(loc) > 2 and loc[0] == "notifiers" and loc[2] in NOTIFIER_TYPES:
        return (*loc[:2], *loc[3:])
    return loc


_FIXED_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "union_tag_not_found": f"the notifier needs a 'type' ({' or '.join(NOTIFIER_TYPES)})",
}
_TYPED_KINDS = (
    "int_",
    "float_",
    "string_",
    "bool",
    "dict_",
    "list_",
    "tuple_",
    "literal_",
    "greater",
    "less",
    "too_",
)


def _message(error: Any) -> str:
    kind = error["type"]
    if kind in _FIXED_MESSAGES:
        return _FIXED_MESSAGES[kind]
    if kind == "union_tag_invalid":
        known = ", ".join(NOTIFIER_TYPES)
        return f"unknown notifier type {error['input'].get('type')!r} (known: {known})"
    if kind.startswith(("datetime_", "date_")):
        return f"expected a date-time such as 2026-12-01T19:30:00+01:00, got {error['input']!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind.startswith(_TYPED_KINDS):
        return f"{message[0].lower()}{message[1:]}, got {error['input']!r}"
    return message


def _problem(root: yaml.Node | None, loc: tuple[str | int, ...], message: str) -> str:
    line = _line_of(root, loc)
    where = f"{line}:" if line is not None else ""
    return f"{where} {_format_loc(loc)}: {message}" if loc else f"{where} {message}"


def _format_loc(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _line_of(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its nearest existing parent."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    line = key.start_mark.line + 1
                    child = value
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            return line
        node = child
    return line
