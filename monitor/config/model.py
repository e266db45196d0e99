"""The configuration's sections and the watched events, as validated models."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic_core import PydanticCustomError

from monitor import markets
from monitor.config.fields import (
    BlankIsNone,
    Duration,
    EventName,
    Interval,
    Model,
    Moment,
    Name,
    Region,
    Source,
    Tags,
    check_database_url,
    check_http_url,
)
from monitor.config.notifiers import NotifierConfig, Rule, Rules
from monitor.models import Status


class TicketmasterConfig(Model):
    base_url: str = "https://app.ticketmaster.com"
    api_key: SecretStr
    batch_size: int | Literal["auto"] = "auto"
    """Event IDs per request: `auto` learns the most that pass (see `upstream.sizing`)."""
    max_url_bytes: int = Field(8000, ge=512, le=1_000_000)
    """No request URL grows longer than this, whatever the batch size."""
    timeout: Duration = 10.0
    max_in_flight: int = Field(4, ge=1, le=64)
    requests_per_second: float = Field(5.0, gt=0)
    daily_quota: int = Field(5000, ge=1, le=2**63 - 1)
    """Requests a day the key may make; the API's `Rate-Limit` header overrides it once seen."""
    max_answer_bytes: int = Field(16 * 1024 * 1024, ge=1024, le=2**31)
    """A larger answer is a failed poll, read no further."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_http_url(value).rstrip("/")

    @field_validator("batch_size", mode="plain")
    @classmethod
    def _batch_size(cls, value: object) -> int | Literal["auto"]:
        if value == "auto":
            return "auto"
        if isinstance(value, str) and value.strip().isdecimal():
            value = int(value)  # from an interpolated ${VARIABLE}
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
            raise ValueError(f"give a number of IDs from 1 to 1000, or auto (got {value!r})")
        return value

    @property
    def pinned_batch_size(self) -> int | None:
        return None if self.batch_size == "auto" else self.batch_size


class DatabaseConfig(Model):
    url: str = "sqlite+aiosqlite:///data/monitor.db"

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return check_database_url(value)


class PollRetryConfig(Model):
    initial: Duration = 2.0
    """The longest wait before retrying a failed batch the first time; it doubles after that."""
    max: Duration = 300.0


class SaleBurstConfig(Model):
    """Around each sale window's opening, when tickets appear and vanish, an event is
    polled every `interval`, from `before` the opening until `after` it."""

    enabled: bool = True
    before: Duration = Field(default=120.0, le=86400.0)
    after: Duration = Field(default=1800.0, le=86400.0)
    interval: Interval = 10.0


class PollingConfig(Model):
    interval: Interval = 60.0
    interval_by_status: dict[Status, Interval] = Field(default_factory=dict)
    unknown_after: int = Field(3, ge=1)
    snapshot_every: Duration = 3600.0
    notify_baseline: bool = False
    fit_quota: bool = False
    """Stretch intervals (less for higher `priority`) until the plan fits the daily quota."""
    retry: PollRetryConfig = PollRetryConfig()
    degraded_after: int = Field(3, ge=1)
    """Failed requests in a row after which the upstream counts as degraded."""
    invalid_key_retry: Duration = 300.0
    invalid_interval: Duration = 3600.0
    """The least interval for an event Ticketmaster said twice in a row it does not know
    (`INVALID_EVENT_ID`); it returns to its own once known."""
    sale_burst: SaleBurstConfig = SaleBurstConfig()


class ServerConfig(Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    """0 picks a free port (the log says which)."""
    token: Annotated[SecretStr | None, BlankIsNone] = None
    """Bearer token for everything but /healthz; required when `host` is not loopback."""
    refresh: Duration = 5.0
    """How often the dashboard fetches fresh figures."""
    unready_after: int = Field(3, ge=1, le=1000)
    """`/readyz` fails after this many poll cycles in a row that the database refused."""
    secure_cookies: bool = False
    """Mark the dashboard's session cookie `Secure`: set it when a TLS proxy serves the
    dashboard, and the browser never sends the cookie over plain HTTP."""

    @property
    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


class UsersConfig(Model):
    """What each member (a user who is not an admin) may ask of the shared watcher."""

    max_subscriptions: int = Field(200, ge=0, le=100_000)
    max_channels: int = Field(10, ge=0, le=1000)
    max_searches: int = Field(5, ge=0, le=1000)
    min_interval: Interval = 60.0
    """The shortest interval a member may ask for: one fan cannot spend everyone's quota."""
    allow_private_targets: bool = False
    """Let members' channels reach loopback, private and link-local addresses (a home
    network's own ntfy or Home Assistant); off, such a channel is refused."""


class AlertsConfig(Model):
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
        return None if value is None else check_http_url(value)


class DiscoveryConfig(Model):
    """Event details (name, date, venue, lifecycle, sales) from the Discovery API."""

    enabled: bool = True
    """False for keys without Discovery access: no Discovery request is ever made."""
    refresh: Duration = Field(default=86400.0, ge=600.0)
    """How often each event's details are fetched again."""
    max_share: float = Field(default=0.1, gt=0.0, le=1.0)
    """The most of the daily quota that `discover:` searches spend together, whatever
    their filters match: each gets an even part, in pages per run and time between runs."""


class RetentionConfig(Model):
    snapshots: Duration | None = 90 * 86400.0
    """Snapshot rows older than this are pruned (None keeps them all)."""
    changes: Duration | None = None
    """Changes (and their delivered or dead deliveries) older than this are pruned."""


class LoggingConfig(Model):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


def _event_id(value: str) -> str:
    try:
        markets.id_kind(value)
    except markets.BadEventId as exc:
        raise PydanticCustomError("event_id", str(exc)) from None
    return value


# A slotted dataclass, not a model: a watchlist may hold 100,000 of them, and a model
# instance carries a dict and a set of its own (about 1 KB each).
@pydantic_dataclass(
    frozen=True,
    slots=True,
    config=ConfigDict(extra="forbid", coerce_numbers_to_str=True, populate_by_name=True),
)
class EventConfig:
    id: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_event_id)]
    """Universal or legacy; read from `url` when the entry gives a link instead."""
    url: str | None = None
    """The event's page, as pasted: its ID and market come from it."""
    name: EventName | None = None
    interval: Interval | None = None
    interval_by_status: dict[Status, Interval] | None = None
    source: Source | None = None
    region: Region | None = Field(default=None, validation_alias=AliasChoices("region", "market"))
    priority: int = Field(default=1, ge=1, le=10)
    """How much less this event's interval is stretched to fit the quota (10: least)."""
    until: Moment | None = None
    """Stop polling after this date-time (e.g. when the show starts)."""
    notify: tuple[Name, ...] | None = None
    tags: Tags = ()
    when: Rules = ()
    cooldown: Duration | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_url(cls, data: object) -> object:
        """An entry may give the event's link instead of its ID: the ID and the market
        come from the link."""
        if not isinstance(data, dict) or data.get("url") is None:
            if isinstance(data, dict) and data.get("id") is None:
                raise PydanticCustomError("event", "give the event as `id:` or as `url:`")
            return data
        if data.get("id") is not None:
            raise PydanticCustomError("event", "give either `id:` or `url:`, not both")
        try:
            link = markets.parse_event_url(str(data["url"]))
        except markets.BadEventId as exc:
            raise PydanticCustomError("event_url", f"url: {exc}") from None
        region = data.get("region", data.get("market"))
        if region is not None and str(region).upper() != link.region:
            raise PydanticCustomError(
                "event_url",
                f"url: the link is on the {link.region} site, but region says {region}",
            )
        return {**data, "id": link.event_id, "region": link.region, "url": link.url}

    @property
    def kind(self) -> markets.IdKind:
        return markets.id_kind(self.id)


class DiscoverWatch(Model):
    """The settings of the events a search adds, as under `events:`."""

    interval: Interval | None = None
    interval_by_status: dict[Status, Interval] | None = None
    priority: int = Field(default=1, ge=1, le=10)
    notify: tuple[Name, ...] | None = None
    tags: Tags = ()
    when: Rules = ()
    cooldown: Duration | None = None


class DiscoverConfig(Model):
    """A search whose events are watched: an artist, a venue, a city, … Each run adds the
    events it finds, each until it starts."""

    name: Name
    """A label, unique among the searches: events added by it are marked with it."""
    keyword: str | None = None
    attraction_id: str | None = None
    venue_id: str | None = None
    country_code: str | None = None
    city: str | None = None
    classification: str | None = None
    dma_id: str | None = None
    every: Duration = Field(default=6 * 3600.0, ge=600.0)
    """How often the search is repeated."""
    window: Duration = Field(default=365 * 86400.0, gt=0)
    """Only events starting within this time from now."""
    max_events: int = Field(default=200, ge=1, le=1000)
    """The most events one search adds; Discovery pages no deeper than 1,000."""
    watch: DiscoverWatch = DiscoverWatch()

    @model_validator(mode="after")
    def _says_what(self) -> DiscoverConfig:
        if not any(
            (
                self.keyword,
                self.attraction_id,
                self.venue_id,
                self.country_code,
                self.city,
                self.classification,
                self.dma_id,
            )
        ):
            raise PydanticCustomError(
                "discover",
                "say what to search for: keyword, attraction_id, venue_id, country_code, "
                "city, classification or dma_id",
            )
        return self


class Config(Model):
    ticketmaster: TicketmasterConfig
    database: DatabaseConfig = DatabaseConfig()
    polling: PollingConfig = PollingConfig()
    logging: LoggingConfig = LoggingConfig()
    server: ServerConfig = ServerConfig()
    alerts: AlertsConfig = AlertsConfig()
    retention: RetentionConfig = RetentionConfig()
    discovery: DiscoveryConfig = DiscoveryConfig()
    users: UsersConfig = UsersConfig()
    discover: tuple[DiscoverConfig, ...] = ()
    notifiers: dict[Name, NotifierConfig] = Field(default_factory=dict)
    events: tuple[EventConfig, ...] = ()

    def interval_of(self, event: EventConfig) -> float:
        return event.interval or self.polling.interval

    @staticmethod
    def partition_of(event: EventConfig) -> str:
        """Events of different ticketing sources, regions or ID kinds never share a request."""
        return markets.partition(event.source, event.region, event.kind)

    def intervals_by_status_of(self, event: EventConfig) -> dict[Status, float]:
        if event.interval_by_status is not None:
            return event.interval_by_status
        return self.polling.interval_by_status

    def targets_of(self, event: EventConfig) -> tuple[str, ...]:
        """The notifiers that hear about changes to `event` (before `when` rules)."""
        return self.listeners(event.notify, event.tags)

    def listeners(self, notify: tuple[str, ...] | None, tags: tuple[str, ...]) -> tuple[str, ...]:
        """The notifiers named in `notify`; without it, those without tags and those that
        share one of `tags`."""
        if notify is not None:
            return notify
        return tuple(
            name
            for name, notifier in self.notifiers.items()
            if notifier.tags is None or set(notifier.tags) & set(tags)
        )

    def rules_for(self, event: EventConfig, notifier: str) -> tuple[tuple[Rule, ...], ...]:
        """Rule sets that must each let a change through: the event's, then the notifier's."""
        return (event.when, self.notifiers[notifier].when)

    def secrets(self) -> list[str]:
        """Every configured value that must never reach a log line, an error or the database."""
        found = [self.ticketmaster.api_key.get_secret_value()]
        for url in (self.ticketmaster.base_url, self.database.url):
            password = urlsplit(url).password
            if password:
                found.append(password)
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
