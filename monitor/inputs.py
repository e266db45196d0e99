"""What the API, the CLI and the dashboard take as input for watches, subscriptions and
searches: request shapes checked strictly (their JSON schemas are the OpenAPI document's),
and problems said in words that name the field, never a pattern."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
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
from monitor.config import EventConfig
from monitor.config.fields import PLAIN_TEXT, REGIONS, SOURCES
from monitor.errors import Invalid, Refused
from monitor.models import ChangeKind, ResaleStatus, Status
from monitor.times import in_seconds, parse_duration

EVENT = TypeAdapter(EventConfig)
"""An entry under `events:`, as the config file's loader checks it."""


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


def problem_of(exc: ValidationError) -> Refused:
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


def entry_of(event: EventConfig) -> dict[str, Any]:
    """An event's entry as it would be written under `events:`."""
    entry: dict[str, Any] = EVENT.dump_python(
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


CHANNEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,29}$"


ChannelName = Annotated[str, Strict(), Field(pattern=CHANNEL_NAME)]


RegionName = Annotated[str, Strict(), Field(pattern=f"^(?:{'|'.join(REGIONS)})$")]


Flag = Annotated[bool, Strict()]


class SubscriptionSettings(StrictInput):
    """What may be set on a subscription."""

    notify: list[ChannelName] | None = Field(
        None, description="The user's channels that hear of it; all of them when absent."
    )
    when: Annotated[list[StatusName], Field(min_length=1)] | None = Field(
        None,
        description="The statuses to hear of, such as TICKETS_AVAILABLE and FEW_TICKETS_LEFT; "
        "every change of status when absent.",
    )
    interval: IntervalText | None = None
    resale: Flag | None = Field(None, description="Resale news (default true).")
    lifecycle: Flag | None = Field(None, description="Cancellations, postponements (true).")
    sales: Flag | None = Field(None, description="Sale and presale openings (true).")


class SubscriptionInput(SubscriptionSettings):
    """A new subscription: the event by `id` (with its `region` if not US) or by `url`."""

    id: EventIdText | SkipJsonSchema[None] = None
    url: LinkText | SkipJsonSchema[None] = None
    region: RegionName | SkipJsonSchema[None] = None

    model_config = ConfigDict(json_schema_extra=BY_ID_OR_LINK)


class ChannelInput(StrictInput):
    """A channel: an Apprise URL (ntfy, Telegram, Discord, Pushover, mailto, ...) or, with
    `type: webhook`, an HTTPS endpoint that receives signed JSON."""

    name: ChannelName
    url: Annotated[str, Strict(), Field(min_length=1, max_length=2048)]
    type: Literal["apprise", "webhook"] = "apprise"
