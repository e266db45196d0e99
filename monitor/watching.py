"""Watches, managed without editing YAML: the one service the JSON API, the CLI and the
dashboard use to list, add, change, pause, snooze and remove them.

A watch has an origin (see `store.watches.Origin`):
- `config` watches are declarative: a reload re-applies them, so changing or removing one
  here is refused ("remove it from the config file"); pausing and snoozing work.
- `api` watches (added here) survive restarts and reloads.
- `discover` watches are a search's; they may be changed, paused, snoozed or removed.

A paused watch is not polled; its state and history stay. A snoozed one is polled and its
changes are stored, but delivered only when the snooze ends: then the latest state, once,
if it differs from what was last delivered. Every write is audited (who, what, when), and
every replica follows it within a tick (`Watches.version`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    Strict,
    TypeAdapter,
    ValidationError,
)
from pydantic.json_schema import SkipJsonSchema

from monitor import markets
from monitor.config import Config, EventConfig
from monitor.config.fields import PLAIN_TEXT, REGIONS, SOURCES
from monitor.errors import MonitorError
from monitor.models import ChangeKind, ResaleStatus, Status
from monitor.notify.audience import interval_of
from monitor.store.subscriptions import Follower
from monitor.store.watches import AuditEntry, Origin, StoredWatch, Watches
from monitor.times import in_seconds, iso, parse_duration

logger = logging.getLogger(__name__)

_EVENT = TypeAdapter(EventConfig)


def _one_of(values: Iterable[str]) -> Any:
    choices = list(values)
    enum: list[JsonValue] = [*choices]
    return Field(pattern=f"^(?:{'|'.join(choices)})$", json_schema_extra={"enum": enum})


_INTERVAL = r"^(?:[1-9][0-9]{0,3}(?:\.[0-9]{1,3})?[smhd]|[1-9][0-9]{0,2}(?:\.[0-9]{1,3})?w){1,3}$"
"""One to three parts, each of at least one unit of seconds or more, none over 9,999 days
or 999 weeks: at least 1s, at most 82 years, as the config's rules ask of an interval."""
_SPAN = r"^(?:[0-9]{1,4}(?:\.[0-9]{1,3})?(?:ms|[smhd])|[0-9]{1,3}(?:\.[0-9]{1,3})?w){1,3}$"
"""A span that may be zero (a snooze `for` 0s ends it), within the same bounds."""
_YEAR = r"(?:20[0-9]{2}|2100)"
_DATE_TIME = (
    rf"^{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
"""RFC 3339, as the document's `date-time` says, in the years 2000 to 2100."""
IntervalText = Annotated[
    str,
    Strict(),
    Field(
        pattern=_INTERVAL,
        description="A duration of at least 1s with units: 30s, 2m, 1h30m, 2w.",
        examples=["30s"],
    ),
]
SpanText = Annotated[
    str,
    Strict(),
    Field(pattern=_SPAN, description="A duration with units: 30s, 2h, 1d; 0s is none."),
]
DateTimeText = Annotated[
    str,
    Strict(),
    Field(
        pattern=_DATE_TIME,
        json_schema_extra={"format": "date-time"},
        description="RFC 3339 (2026-12-24T18:00:00Z), in the years 2000 to 2100.",
    ),
]
EventIdText = Annotated[
    str,
    Strict(),
    Field(pattern=f"^(?:{markets.LEGACY_ID.pattern}|{markets.UNIVERSAL_ID.pattern})$"),
]
LinkText = Annotated[
    str,
    Strict(),
    Field(
        pattern=markets.EVENT_LINK,
        max_length=2048,
        description="The event's page on a Ticketmaster site, as its address bar shows it.",
    ),
]
StatusName = Annotated[str, Strict(), _one_of(status.value for status in Status)]
ResaleName = Annotated[str, Strict(), _one_of(status.value for status in ResaleStatus)]
Tag = Annotated[str, Strict(), Field(min_length=1, max_length=40, pattern=PLAIN_TEXT)]
NotifierName = Annotated[str, Strict(), Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)]


def whole_number(value: object) -> object:
    """3.0 is the integer 3 in JSON; "3" and true are not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class StrictInput(BaseModel):
    """A request's shape, checked strictly (a number is not a string, nothing unknown)
    before the rules an entry under `events:` follows; its JSON schema is the OpenAPI
    document's."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)


KindName = Annotated[str, Strict(), _one_of(kind.value for kind in ChangeKind)]


class RuleInput(StrictInput):
    """A `when` rule, as under `events:`, on the status or on either field."""

    kind: list[KindName] | None = None
    field: Literal["status"] | None = None
    from_: list[StatusName] | None = Field(None, alias="from")
    to: list[StatusName] | None = None
    urgent: Annotated[bool, Strict()] = False


class ResaleRuleInput(StrictInput):
    """A `when` rule on the resale status, whose states are its own."""

    kind: list[KindName] | None = None
    field: Literal["resale_status"]
    from_: list[ResaleName] | None = Field(None, alias="from")
    to: list[ResaleName] | None = None
    urgent: Annotated[bool, Strict()] = False


class SettingsInput(StrictInput):
    """What may be set on a watch: the settings of an entry under `events:`."""

    name: Annotated[str, Strict(), Field(max_length=200, pattern=PLAIN_TEXT)] | None = None
    interval: IntervalText | None = None
    interval_by_status: dict[StatusName, IntervalText] | None = None
    notify: list[NotifierName] | None = Field(None, description="Notifiers by name.")
    tags: Annotated[list[Tag], Field(max_length=20)] | None = None
    priority: Annotated[int, Strict(), Field(ge=1, le=10), BeforeValidator(whole_number)] | None = (
        None
    )
    until: DateTimeText | None = Field(None, description="Stop polling after this moment.")
    region: Annotated[str, Strict(), _one_of(REGIONS)] | None = None
    source: Annotated[str, Strict(), _one_of(SOURCES)] | None = None
    when: list[RuleInput | ResaleRuleInput] | None = None
    cooldown: IntervalText | None = None


BY_ID_OR_LINK: dict[str, JsonValue] = {
    "oneOf": [
        {"required": ["id"], "not": {"required": ["url"]}},
        {
            "required": ["url"],
            "not": {
                "anyOf": [
                    {"required": ["id"]},
                    # A link says its region.
                    {"required": ["region"], "properties": {"region": {"type": "string"}}},
                ]
            },
        },
    ]
}
"""What the JSON schema says of a new watch or subscription: an `id` or a `url`, and a
`region` with an `id` alone."""


class WatchInput(SettingsInput):
    """A new watch: the event by `id` or by `url` (its page, as pasted), and its settings."""

    # Neither is nullable: one of the two names the event.
    id: EventIdText | SkipJsonSchema[None] = None
    url: LinkText | SkipJsonSchema[None] = None

    model_config = ConfigDict(json_schema_extra=BY_ID_OR_LINK)


class SnoozeInput(StrictInput):
    """How long a watch's changes wait: `for` a while, or `until` a moment."""

    for_: SpanText | SkipJsonSchema[None] = Field(None, alias="for")
    until: DateTimeText | SkipJsonSchema[None] = None

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["for"]}, {"required": ["until"]}]}
    )


class WatchError(MonitorError):
    """A write that cannot be done, and the field that is wrong, if one is. Which kind it is
    says why; the HTTP layer and the CLI turn the kind into a status or an exit code."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class Invalid(WatchError):
    """The input is wrong: a value, a field, a shape."""


class NotFound(WatchError):
    """What it names does not exist (or is not the asker's to see)."""


class Conflict(WatchError):
    """It cannot be done as things stand: it exists already, a limit, the config file's."""


class Forbidden(WatchError):
    """The asker may not do it: writes are off, or a stale form."""


class Unauthorized(WatchError):
    """The asker is not who they say: a wrong password or token."""


class Unsupported(WatchError):
    """The body is not of a type taken here (a form where JSON goes, or the reverse)."""


@dataclass(frozen=True, slots=True)
class WatchView:
    event_id: str
    origin: Origin
    name: str | None
    search: str | None
    settings: Mapping[str, Any]
    paused: bool
    snoozed_until: float | None

    def document(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "origin": self.origin.value,
            "name": self.name,
            "search": self.search,
            "settings": dict(self.settings),
            "paused": self.paused,
            "snoozed_until": None if self.snoozed_until is None else iso(self.snoozed_until),
        }


class Watching:
    def __init__(
        self,
        watches: Watches,
        config: Callable[[], Config],
        clock: Callable[[], float],
        changed: Callable[[Sequence[str]], Awaitable[None]] | None = None,
        released: Callable[[], None] | None = None,
    ) -> None:
        self._watches = watches
        self._released = released
        """Wakes this process's dispatcher: a snooze ended lets what it held go now."""
        self._config = config
        self._clock = clock
        self._changed = changed
        """Applies a write to this process's watchlist at once (a daemon's, where the
        service runs in one), for the one event written; other processes follow the watch
        log within a tick."""

    async def _written(self, event_id: str) -> None:
        if self._changed is not None:
            await self._changed([event_id])

    async def list(self) -> list[WatchView]:
        config = self._config()
        stored = {watch.event_id: watch for watch in await self._watches.stored()}
        views = [_of_config(event, stored.get(event.id)) for event in config.events]
        configured = {event.id for event in config.events}
        views.extend(
            _of_stored(watch)
            for watch in stored.values()
            if watch.origin is not Origin.CONFIG and watch.event_id not in configured
        )
        return sorted(views, key=lambda view: view.event_id)

    async def get(self, event_id: str) -> WatchView:
        stored = await self._watches.get(event_id)
        configured = next((e for e in self._config().events if e.id == event_id), None)
        if configured is not None:
            return _of_config(configured, stored)
        if stored is None or stored.origin is Origin.CONFIG:
            raise NotFound(f"no watch for event {event_id!r}")
        return _of_stored(stored)

    async def add(self, body: Mapping[str, Any], who: str) -> WatchView:
        """Watch an event given by `id` or `url`, with the settings an entry under
        `events:` takes (a null is no setting); 409 when it is watched already."""
        not_null(body, "id", "url")
        if body.get("url") is not None and body.get("region") is not None:
            raise Invalid("give a link or a region: the link says its region", field="region")
        event, settings = self._validated(_set(body))
        view_id = event.id
        if any(configured.id == view_id for configured in self._config().events):
            raise Conflict(f"{view_id} is watched already", field="id")
        until = None if event.until is None else event.until.timestamp()
        stored = StoredWatch(view_id, Origin.API, None, settings, self._clock(), until)
        if not await self._watches.put(stored, self._clock(), who):
            raise Conflict(f"{view_id} is watched already", field="id")
        await self._written(view_id)
        logger.info("%s: watch %s added", who, view_id)
        return _of_stored(stored)

    async def update(self, event_id: str, body: Mapping[str, Any], who: str) -> WatchView:
        """Change the settings of an API or search watch: those given replace the stored
        ones, and a null removes one."""
        view = await self.get(event_id)
        if view.origin is Origin.CONFIG:
            raise Conflict(f"{event_id} comes from the config file: change it there")
        if "id" in body or "url" in body:
            field = "id" if "id" in body else "url"
            raise Invalid("a watch's event cannot change", field=field)
        if body.get("region") is not None and view.settings.get("url"):
            raise Conflict("this watch's link says its region", field="region")
        shaped(SettingsInput, body)
        event, settings = self._validated(_set({**view.settings, **body}))
        until = None if event.until is None else event.until.timestamp()
        await self._watches.change(
            event_id,
            self._clock(),
            who,
            "change",
            dict(body),
            settings=settings,
            until=until,
        )
        await self._written(event_id)
        logger.info("%s: watch %s changed", who, event_id)
        return await self.get(event_id)

    async def remove(self, event_id: str, who: str) -> None:
        view = await self.get(event_id)
        if view.origin is Origin.CONFIG:
            raise Conflict(
                f"{event_id} comes from the config file: remove it from the config file",
            )
        await self._watches.remove(event_id, self._clock(), who)
        await self._written(event_id)
        logger.info("%s: watch %s removed (its history stays)", who, event_id)

    async def restore(self, event_id: str, who: str) -> WatchView:
        """Undo the removal of a watch: watched again with the settings it had."""
        if not await self._watches.restore(event_id, self._clock(), who):
            raise Conflict(f"there is no removal of {event_id} to undo")
        await self._written(event_id)
        logger.info("%s: watch %s restored", who, event_id)
        return await self.get(event_id)

    async def pause(self, event_id: str, who: str, *, paused: bool = True) -> WatchView:
        await self.get(event_id)
        action = "pause" if paused else "resume"
        await self._watches.change(event_id, self._clock(), who, action, None, paused=paused)
        await self._written(event_id)
        logger.info("%s: watch %s %s", who, event_id, "paused" if paused else "resumed")
        return await self.get(event_id)

    async def snooze(self, event_id: str, body: Mapping[str, Any], who: str) -> WatchView:
        """Hold the watch's deliveries `{"for": "2h"}` or `{"until": ISO}`; a snooze that
        ends now or earlier (`{"for": "0s"}`) ends the one in force."""
        await self.get(event_id)
        now = self._clock()
        until: float | None = snooze_end(body, now)
        if until is not None and until <= now:
            until = None
        await self._watches.snooze(event_id, until, now, who)
        await self._written(event_id)
        if self._released is not None:
            self._released()
        logger.info("%s: watch %s %s", who, event_id, "snoozed" if until else "unsnoozed")
        return await self.get(event_id)

    async def audit(self, event_id: str) -> Sequence[AuditEntry]:
        """Every write to the watch: who, what and when, oldest first."""
        return await self._watches.audit_of(event_id)

    def _validated(self, body: Mapping[str, Any]) -> tuple[EventConfig, dict[str, Any]]:
        """The entry as `events:` would take it, checked the same way; and its settings, as
        given (a link stays a link, as rebuilt from its parts: the ID and market are read from
        it each time)."""
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise Invalid(f"unknown field {unknown[0]!r}", field=unknown[0])
        try:
            event = _EVENT.validate_python(dict(body))
        except ValidationError as exc:
            raise problem_of(exc) from None
        shaped(WatchInput, body)
        config = self._config()
        for name in event.notify or ():
            if name not in config.notifiers:
                known = ", ".join(sorted(config.notifiers)) or "none"
                raise Invalid(f"no notifier is named {name!r} (known: {known})", field="notify")
        return event, {**body, "url": event.url} if event.url else dict(body)


_FIELDS = frozenset(field.alias or name for name, field in WatchInput.model_fields.items())


def _set(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


def not_null(body: Mapping[str, Any], *fields: str) -> None:
    for field in fields:
        if field in body and body[field] is None:
            raise Invalid("must not be null", field=field)


def shaped(model: type[StrictInput], body: Mapping[str, Any]) -> None:
    """`body` has the request's shape: what the config file would coerce (a number for a
    name, "5" for a priority) is refused here, as the OpenAPI document says."""
    try:
        model.model_validate(body)
    except ValidationError as exc:
        raise problem_of(exc) from None


def problem_of(exc: ValidationError) -> WatchError:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"] if not _is_tag(part)) or None
    if error["type"] == "extra_forbidden":
        name = ".".join(str(part) for part in error["loc"] if not _is_tag(part))
        return Invalid(f"unknown field {name!r}", field=name)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "string_pattern_mismatch":
        message = _pattern_words(str(error["ctx"]["pattern"]), error["input"])
    return Invalid(message, field=field)


_CHOICES = re.compile(r"\^\(\?:([A-Za-z0-9_|/+-]+)\)\$")


def _pattern_words(pattern: str, given: object) -> str:
    """What a value of the wrong form should look like, in words, never the pattern."""
    shown = repr(given) if len(repr(given)) <= 40 else f"{repr(given)[:40]}..."
    if pattern in (_INTERVAL, _SPAN):
        return f"invalid duration {shown}: use a number with s, m, h or d, e.g. 2h"
    if pattern == _DATE_TIME:
        return f"invalid date-time {shown}: write it like 2026-12-24T18:00:00Z"
    if pattern == PLAIN_TEXT:
        return f"{shown} must not contain control characters"
    choices = _CHOICES.fullmatch(pattern)
    if choices is not None:
        return f"{shown} is not one of {', '.join(choices.group(1).split('|'))}"
    return f"{shown} is not in the form this field takes"


def _is_tag(part: str | int) -> bool:
    """Pydantic names the member of a union it tried ("constrained-str"): not a field."""
    return isinstance(part, str) and (
        "-" in part or "[" in part or part in ("str", "int", "float", "bool", "none")
    )


_NONE = re.compile(r"(?:0+(?:\.0+)?(?:ms|[smhdwy]))+")


def snooze_end(body: Mapping[str, Any], now: float) -> float:
    """When a snooze given as `{"for": "2h"}` or `{"until": ISO}` ends."""
    not_null(body, "for", "until")
    shaped(SnoozeInput, body)
    if ("for" in body) == ("until" in body):
        raise Invalid("give either `for` or `until`", field="for")
    if "for" in body:
        if _NONE.fullmatch(body["for"]):
            return now
        try:
            return now + parse_duration(body["for"])
        except ValueError as exc:
            raise Invalid(str(exc), field="for") from None
    try:
        moment = datetime.fromisoformat(body["until"])
    except ValueError:
        raise Invalid("expected an ISO 8601 date-time", field="until") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def with_watches(
    config: Config,
    stored: Iterable[StoredWatch],
    audience: Mapping[str, Sequence[Follower]] | None = None,
) -> Config:
    """The events `config` watches: the file's own but those paused, the watches the
    database holds besides (added through the API, or found by searches) but those paused,
    and the events users follow. The file's own entries win over stored settings for the
    same event; an event followed is polled at least as often as a follower asks."""
    rows = {watch.event_id: watch for watch in stored}
    audience = audience or {}
    if not rows and not audience:
        return config
    followed = dict(audience)
    events = [
        event
        for configured in config.events
        if (
            event := watched_event(
                config, configured, rows.pop(configured.id, None), followed.pop(configured.id, ())
            )
        )
        is not None
    ]
    events.extend(
        event
        for watch in rows.values()
        if (event := watched_event(config, None, watch, followed.pop(watch.event_id, ())))
        is not None
    )
    events.extend(
        event
        for event_id, followers in followed.items()
        if (event := watched_event(config, None, None, followers, event_id)) is not None
    )
    return config.model_copy(update={"events": tuple(events)})


def watched_event(
    config: Config,
    configured: EventConfig | None,
    stored: StoredWatch | None,
    followers: Sequence[Follower] = (),
    event_id: str | None = None,
) -> EventConfig | None:
    """What one event is watched as: the file's entry (`configured`) unless paused, else the
    settings stored for an API or search watch unless paused, else what its followers
    gave; at the shortest interval any of them asks for. None if nothing watches it."""
    event = _watched(configured, stored)
    if not followers:
        return event
    fastest = interval_of(followers, config.polling.interval, config.users.min_interval)
    if event is None:
        return _followed(followers, event_id, fastest)
    if fastest is not None and fastest < config.interval_of(event):
        return _EVENT.validate_python({**entry_of(event), "interval": _seconds(fastest)})
    return event


def _seconds(interval: float | None) -> str | None:
    return None if interval is None else f"{interval!r}s"


def held_in(event: EventConfig, country: str | None) -> EventConfig:
    """The event polled in the market of the `country` Discovery says it is held in, when
    nothing named its region: a show in GB or IE answers only to `region=UK`."""
    if country is None or event.region is not None or event.url:
        return event
    return _EVENT.validate_python({**entry_of(event), "region": country})


def _watched(configured: EventConfig | None, stored: StoredWatch | None) -> EventConfig | None:
    if stored is not None and stored.paused:
        return None
    if configured is not None:
        return configured
    if stored is None or stored.origin is Origin.CONFIG:
        return None
    try:
        return _EVENT.validate_python(stored.settings)
    except ValidationError as exc:
        logger.warning(
            "%s cannot be watched with the settings stored for it (%s)",
            stored.event_id,
            exc.errors()[0]["msg"],
        )
        return None


def _followed(
    followers: Sequence[Follower], event_id: str | None, interval: float | None
) -> EventConfig | None:
    """The event as its first follower gave it (by ID or link, in its region), heard of by
    its followers alone: no notifier of the config file."""
    given = {
        key: value
        for key, value in followers[0].settings.items()
        if key in ("id", "url", "region") and value is not None
    }
    try:
        return _EVENT.validate_python({**given, "interval": _seconds(interval), "notify": []})
    except ValidationError as exc:
        logger.warning(
            "%s cannot be followed as it was given (%s)", event_id, exc.errors()[0]["msg"]
        )
        return None


def _of_config(event: EventConfig, stored: StoredWatch | None) -> WatchView:
    return WatchView(
        event.id,
        Origin.CONFIG,
        event.name,
        None,
        {"id": event.id},
        stored is not None and stored.paused,
        None if stored is None else stored.snoozed_until,
    )


def _of_stored(watch: StoredWatch) -> WatchView:
    return WatchView(
        watch.event_id,
        watch.origin,
        watch.settings.get("name"),
        watch.search,
        watch.settings,
        watch.paused,
        watch.snoozed_until,
    )


def entry_of(event: EventConfig) -> dict[str, Any]:
    """An event's entry as it would be written under `events:`."""
    entry: dict[str, Any] = _EVENT.dump_python(
        event, mode="json", by_alias=True, exclude_defaults=True
    )
    if event.url:
        entry.pop("id")
        entry.pop("region", None)  # the link says both
    for key in ("interval", "cooldown"):
        if key in entry:
            entry[key] = in_seconds(entry[key])
    if "interval_by_status" in entry:
        entry["interval_by_status"] = {
            status: in_seconds(seconds) for status, seconds in entry["interval_by_status"].items()
        }
    return entry
