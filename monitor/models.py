"""Value types shared by the poller, the store, the dispatcher and the notifiers.

The types on the hot path (one per observed event per poll) are NamedTuples: immutable
like frozen dataclasses, but several times cheaper to build.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Status(StrEnum):
    TICKETS_AVAILABLE = "TICKETS_AVAILABLE"
    FEW_TICKETS_LEFT = "FEW_TICKETS_LEFT"
    TICKETS_NOT_AVAILABLE = "TICKETS_NOT_AVAILABLE"
    UNKNOWN = "UNKNOWN"

    @property
    def words(self) -> str:
        return _STATUS_WORDS[self]


class ResaleStatus(StrEnum):
    TICKETS_AVAILABLE = "TICKETS_AVAILABLE"
    TICKETS_NOT_AVAILABLE = "TICKETS_NOT_AVAILABLE"
    UNKNOWN = "UNKNOWN"


_STATUS_WORDS = {
    Status.TICKETS_AVAILABLE: "tickets available",
    Status.FEW_TICKETS_LEFT: "few tickets left",
    Status.TICKETS_NOT_AVAILABLE: "no tickets available",
    Status.UNKNOWN: "status unknown",
}

STATUS_BY_NAME: dict[str, Status] = {s.value: s for s in Status}
RESALE_BY_NAME: dict[str, ResaleStatus] = {s.value: s for s in ResaleStatus}


class Availability(NamedTuple):
    """What Ticketmaster says about one event: primary and resale status."""

    status: Status
    resale_status: ResaleStatus


INVALID_EVENT_ID = "INVALID_EVENT_ID"
"""The `statusDetail` of an ID Ticketmaster does not know."""


class StatusDetail(NamedTuple):
    """Why an answer said UNKNOWN, in Ticketmaster's words (`statusDetail` and
    `resaleStatusDetail`, for example INVALID_EVENT_ID or NOT_SUPPORTED)."""

    status: str | None
    resale: str | None

    @property
    def invalid(self) -> bool:
        """Ticketmaster does not know the event."""
        return self.status == INVALID_EVENT_ID


NO_DETAIL = StatusDetail(None, None)


class Answer(NamedTuple):
    """One item of an answer as it came: the values are whatever the JSON held."""

    event_id: str
    status: object
    resale_status: object
    detail: StatusDetail = NO_DETAIL

    @classmethod
    def of(cls, event_id: str, item: Mapping[str, object]) -> Answer:
        detail = item.get("statusDetail"), item.get("resaleStatusDetail")
        return cls(
            event_id,
            item.get("status"),
            item.get("resaleStatus"),
            NO_DETAIL if detail == (None, None) else StatusDetail(*map(_detail, detail)),
        )


def _detail(value: object) -> str | None:
    """A detail as stored: a short code, or None for anything else."""
    return value[:64] if isinstance(value, str) and value else None


class Reading(NamedTuple):
    """One event as the API answered it, before any rule is applied.

    A field is None when the answer did not carry a documented value for it.
    """

    event_id: str
    status: Status | None
    resale_status: ResaleStatus | None


class EventState(NamedTuple):
    """The accepted state of one event, as the database holds it. It does not name the
    event (whoever holds it knows which), so events in the same state share one object:
    a cache of 100,000 states is then a few objects and a dict."""

    current: Availability | None
    unknown_streak: int
    last_snapshot_at: float | None
    read_in_last_poll: bool = True
    """False when its batch's last poll did not read it: its row then needs a write."""
    detail: StatusDetail | None = None
    """Why its last answer said UNKNOWN; None while nothing accepted or read is UNKNOWN,
    so that an answer repeating an accepted state is taken without reading its details."""


class EventStatus(NamedTuple):
    """A watched event as notifiers that keep state (MQTT) announce it."""

    event_id: str
    name: str | None
    current: Availability | None
    changed_at: float | None
    info: EventInfo | None = None
    watching: bool = True
    """False while the watch is paused: its entities stay."""


class DaemonHealth(NamedTuple):
    """The watcher itself, as notifiers that keep state (MQTT) announce it."""

    last_poll_at: float | None
    health: Health
    quota_left: int | None


@dataclass(frozen=True, slots=True)
class Venue:
    name: str | None = None
    city: str | None = None
    country: str | None = None


@dataclass(frozen=True, slots=True)
class EventInfo:
    """What people are shown about an event besides its availability: the configured
    name (else Discovery's), date, venue, the link to its page and its lifecycle. Unknown
    fields are None."""

    name: str | None = None
    starts_at: float | None = None
    timezone: str | None = None
    venue: Venue = Venue()
    url: str | None = None
    lifecycle: str | None = None


class ChangeKind(StrEnum):
    INVENTORY = "inventory"
    """The availability changed: the Inventory Status API's answer."""
    LIFECYCLE = "lifecycle"
    """The event was cancelled, postponed, rescheduled, … (Discovery's `dates.status`)."""
    SALE_OPENED = "sale_opened"
    """A public sale or a presale window started."""


@dataclass(frozen=True, slots=True)
class SaleOpening:
    kind: str
    """"public" or "presale"."""
    name: str | None
    starts_at: float


@dataclass(frozen=True, slots=True)
class Change:
    """An accepted difference between the stored and the observed availability, or
    another kind of news about the event (see `ChangeKind`). A change of another kind
    carries the event's availability when it happened as `previous` and `current`."""

    id: str
    event_id: str
    event_name: str | None
    previous: Availability | None
    current: Availability
    observed_at: float
    event: EventInfo | None = None
    """The event's details when read back for delivery or display."""
    lifecycle: tuple[str | None, str] | None = None
    """For a lifecycle change: the code before (None when unknown) and after."""
    sale: SaleOpening | None = None
    """For a sale opening: which sale."""

    @property
    def kind(self) -> ChangeKind:
        if self.lifecycle is not None:
            return ChangeKind.LIFECYCLE
        if self.sale is not None:
            return ChangeKind.SALE_OPENED
        return ChangeKind.INVENTORY

    @property
    def changed(self) -> tuple[str, ...]:
        if self.kind is ChangeKind.LIFECYCLE:
            return ("lifecycle",)
        if self.kind is ChangeKind.SALE_OPENED:
            return ("sale",)
        if self.previous is None:
            return ("status", "resale_status")
        fields = []
        if self.previous.status != self.current.status:
            fields.append("status")
        if self.previous.resale_status != self.current.resale_status:
            fields.append("resale_status")
        return tuple(fields)

    @property
    def known_name(self) -> str | None:
        """The event's one name everywhere: the configured one, else Discovery's."""
        fetched = self.event.name if self.event is not None else None
        return self.event_name or fetched

    @property
    def title(self) -> str:
        return self.known_name or self.event_id


@dataclass(frozen=True, slots=True)
class Delivery:
    """One change on its way to one notifier; `id` stays the same across retries."""

    id: str
    notifier: str
    change: Change
    attempt: int
    attempted_at: float
    """When this attempt starts (the dispatcher's clock); webhooks sign it."""
    group: tuple[Change, ...] = ()
    """Further changes sent in the same message (a notifier's `group_window`)."""

    @property
    def changes(self) -> tuple[Change, ...]:
        return (self.change, *self.group)


class DeliveryState(StrEnum):
    """Where a delivery stands in the outbox."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"
    """Given up on: a permanent failure, or retried past `give_up_after`."""
    SUPERSEDED = "superseded"
    """Never sent: a cooldown found a newer change, or nothing new to say."""


class Outcome(StrEnum):
    """What one attempt at a delivery came to."""

    DELIVERED = "delivered"
    FAILED = "failed"
    """Retried at the attempt's `next_attempt_at`."""
    DEAD = "dead"


class NoticeKind(StrEnum):
    STALLED = "stalled"
    RECOVERED = "recovered"
    SUMMARY = "summary"
    FOUND = "found"
    """A `discover:` search found new events to watch."""

    @property
    def message_type(self) -> str:
        """The webhook's `type` for such a notice."""
        return "discover.found" if self is NoticeKind.FOUND else f"monitor.{self.value}"


@dataclass(frozen=True, slots=True)
class Notice:
    """A message about the watcher itself (stalled, recovered, daily summary) or its
    searches (new events found), not a change."""

    id: str
    kind: NoticeKind
    subject: str
    body: str
    at: float


class Health(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    QUOTA_EXHAUSTED = "quota_exhausted"
    INVALID_API_KEY = "invalid_api_key"

    @property
    def words(self) -> str:
        return _HEALTH_WORDS[self]


_HEALTH_WORDS = {
    Health.OK: "ok",
    Health.DEGRADED: "the Inventory Status API keeps failing",
    Health.QUOTA_EXHAUSTED: "the API key's daily quota is used up",
    Health.INVALID_API_KEY: "the API key is refused",
}


@dataclass(frozen=True, slots=True)
class Quota:
    limit: int | None = None
    available: int | None = None
    reset_at: float | None = None


@dataclass(frozen=True, slots=True)
class UpstreamStatus:
    """What the database keeps, `status` shows and a restarted daemon resumes from."""

    health: Health = Health.OK
    since: float | None = None
    paused_until: float | None = None
    last_error: str | None = None
    last_success_at: float | None = None
    quota: Quota = Quota()


def new_id() -> str:
    """A fresh ID for a change, delivery, batch or replica."""
    return uuid.uuid4().hex
