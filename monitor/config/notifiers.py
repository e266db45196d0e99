"""The notifiers' settings, one model per kind, and the `when:` rules that filter changes."""

from __future__ import annotations

import base64
import binascii
import difflib
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from monitor.config.apprise_urls import apprise_problem
from monitor.config.fields import (
    BlankIsNone,
    Duration,
    Model,
    Tags,
    Template,
    check_http_url,
    url_parts,
)
from monitor.models import ChangeKind, ResaleStatus, Status

FieldName = Literal["status", "resale_status"]
ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
"""A time of day, `23:00`."""


_VALUES: dict[FieldName | None, tuple[str, ...]] = {
    "status": tuple(s.value for s in Status),
    "resale_status": tuple(s.value for s in ResaleStatus),
    None: tuple(s.value for s in Status),
}


def _one_or_many(value: object) -> object:
    """`to: TICKETS_AVAILABLE` means `to: [TICKETS_AVAILABLE]`."""
    return (value,) if isinstance(value, str) else value


class Rule(BaseModel):
    """A change passes when it is of a kind in `kind` (without it: an inventory change)
    and, for an inventory change, one of `fields` changed, from a state in `from` (if
    given) to a state in `to` (if given). Without `field`, both fields are considered."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: Annotated[tuple[ChangeKind, ...] | None, BeforeValidator(_one_or_many)] = None
    """inventory, lifecycle or sale_opened."""
    field: FieldName | None = None
    from_: Annotated[tuple[str, ...] | None, BeforeValidator(_one_or_many)] = Field(
        None, alias="from"
    )
    to: Annotated[tuple[str, ...] | None, BeforeValidator(_one_or_many)] = None
    urgent: bool = False
    """A change this rule passes goes out even in the notifier's quiet hours."""

    @field_validator("from_", "to")
    @classmethod
    def _known_values(
        cls, values: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        """A misspelt value would make the rule match nothing, silently: refuse it."""
        field = info.data.get("field")
        valid = _VALUES[field]
        for value in values or ():
            if value not in valid:
                raise PydanticCustomError("rule_value", _unknown_value(value, field, valid))
        return values

    @property
    def never_matches(self) -> bool:
        """`from` and `to` the same single state: no change goes from a state to itself."""
        return (
            self.from_ is not None
            and self.to is not None
            and len(self.from_) == 1
            and self.from_ == self.to
        )


def _unknown_value(value: str, field: FieldName | None, valid: tuple[str, ...]) -> str:
    what = {"status": "status", "resale_status": "resale status", None: "status"}[field]
    close = difflib.get_close_matches(value.upper().replace(" ", "_"), valid, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    if field == "resale_status" and value in _VALUES["status"]:
        hint = " (resale has no such state)"
    return f"unknown {what} {value!r}{hint}; valid: {', '.join(valid)}"


class RetryConfig(Model):
    backoff: tuple[Duration, ...] = Field((5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0), min_length=1)
    """The longest wait before attempt 2, 3, ...; the last step repeats."""
    give_up_after: Duration = 86400.0


def _as_rules(value: object) -> object:
    return [value] if isinstance(value, dict) else value


Rules = Annotated[tuple[Rule, ...], BeforeValidator(_as_rules)]
"""`when:` takes one rule or a list of rules (any of which lets a change through)."""


class QuietHoursConfig(Model):
    """`{from: "23:00", to: "07:00", timezone: Europe/London}`: deliveries wait till `to`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: ClockTime = Field(alias="from")
    to: ClockTime
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError(
                "timezone", f"unknown time zone {value!r} (write it like Europe/London)"
            ) from None
        return value


class _NotifierConfig(Model):
    retry: RetryConfig = RetryConfig()
    concurrency: int = Field(4, ge=1, le=100)
    timeout: Duration = 15.0
    when: Rules = ()
    tags: Tags | None = None
    """Hear only events carrying one of these tags (unless an event names this notifier)."""
    cooldown: Duration | None = None
    group_window: Duration | None = None
    quiet_hours: QuietHoursConfig | None = None

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
    allow_plaintext_auth: bool = False
    """Send the password even with `security: none` (a relay on the same machine)."""
    verify: bool = True
    username: Annotated[str | None, BlankIsNone] = None
    password: Annotated[SecretStr | None, BlankIsNone] = None
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

    @field_validator("urls")
    @classmethod
    def _usable(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        problems = [
            f"URL {index + 1}: {problem}"
            for index, url in enumerate(urls)
            if (problem := apprise_problem(url)) is not None
        ]
        if problems:
            raise PydanticCustomError("apprise_url", "; ".join(problems))
        return urls

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
        return check_http_url(value)

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


class MqttNotifierConfig(_NotifierConfig):
    """Publishes changes, retained states and (optionally) Home Assistant discovery."""

    type: Literal["mqtt"]
    url: str
    """mqtt://[user:password@]host[:port], or mqtts:// for TLS."""
    verify: bool = True
    topic_prefix: Annotated[str, Field(pattern=r"^[^#+\x00]+$", max_length=128)] = (
        "inventory-monitor"
    )
    qos: Literal[0, 1, 2] = 1
    homeassistant: bool = False
    discovery_prefix: Annotated[str, Field(pattern=r"^[^#+\x00]+$", max_length=128)] = (
        "homeassistant"
    )
    instance: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")] | None = None
    """Part of every Home Assistant ID, so that two daemons on one broker never touch each
    other's entities; by default made from `topic_prefix`."""

    @property
    def instance_name(self) -> str:
        if self.instance is not None:
            return self.instance
        words = "".join(c if c.isascii() and c.isalnum() else " " for c in self.topic_prefix)
        return "_".join(words.lower().split())[:32] or "default"

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        url_parts(value, ("mqtt", "mqtts"), "mqtt://[user:password@]host[:port] (or mqtts://)")
        return value

    def secrets(self) -> list[str]:
        password = urlsplit(self.url).password
        return [self.url, password] if password else []


NOTIFIER_TYPES = ("log", "webhook", "email", "apprise", "mqtt")
NotifierConfig = Annotated[
    LogNotifierConfig
    | WebhookNotifierConfig
    | EmailNotifierConfig
    | AppriseNotifierConfig
    | MqttNotifierConfig,
    Field(discriminator="type"),
]
