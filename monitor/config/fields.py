"""Field types shared by the configuration's models: durations, names, URLs, templates."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import SplitResult, urlsplit

from jinja2 import Environment, TemplateSyntaxError
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from monitor.times import format_duration, parse_duration


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
MIN_INTERVAL = 1.0
"""The shortest time between two polls of one event: the API's statuses move in seconds,
and a shorter interval only spends the quota (and `1ms` is a slip of the keyboard)."""


def _at_least_a_second(value: float) -> float:
    if value < MIN_INTERVAL:
        raise PydanticCustomError(
            "interval", f"an interval is at least 1s, got {format_duration(value)}"
        )
    return value


Interval = Annotated[float, BeforeValidator(_duration), AfterValidator(_at_least_a_second)]


def _blank_is_none(value: object) -> object:
    return None if value == "" else value


BlankIsNone = BeforeValidator(_blank_is_none)
"""`key: ${VAR:-}` leaves an optional setting off when VAR is unset."""
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", min_length=1, max_length=64)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def masked_url(url: str) -> str:
    """`url` with any user info (`user:password@`) shown as `***@`: config errors are shown."""
    return _USER_INFO.sub(r"\1***@", url)


_USER_INFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def url_parts(value: str, schemes: tuple[str, ...], expected: str) -> SplitResult:
    """`value` split, when it is a URL of one of `schemes` with a host and a valid port;
    otherwise a validation error that says `expected`, and shows the URL masked."""
    parts = _split(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise PydanticCustomError("url", f"expected {expected}, got {masked_url(value)!r}")
    return parts


def _split(value: str) -> SplitResult:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a port that is not a number, or over 65535, raises here
    except ValueError as exc:
        raise PydanticCustomError("url", f"{_reason(exc)} in {masked_url(value)!r}") from None
    return parts


def _reason(exc: ValueError) -> str:
    text = str(exc)
    if text.startswith("Port"):  # "Port out of range 0-65535", "Port could not be cast..."
        return "the port must be a number up to 65535"
    return text[:1].lower() + text[1:]


def check_http_url(value: str) -> str:
    url_parts(value, ("http", "https"), "an http(s) URL")
    return value


_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_ALIASES = {"postgres": "postgresql"}


def check_database_url(value: str) -> str:
    """A URL the daemon can open: SQLite through aiosqlite, PostgreSQL through asyncpg."""
    scheme, sep, rest = value.partition("://")
    dialect = scheme.partition("+")[0]
    dialect = _ALIASES.get(dialect, dialect)
    wanted = _DRIVERS.get(dialect)
    if not sep or wanted is None:
        raise PydanticCustomError(
            "database_url",
            "expected sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB",
        )
    if scheme != wanted:
        raise PydanticCustomError(
            "database_url",
            f"the daemon needs an async driver: write {masked_url(f'{wanted}://{rest}')}",
        )
    _split(value)  # a host may be left out (a socket), but a port must be valid
    return value


def check_template(source: str) -> str:
    """`source` if it compiles; raises ValueError with the line otherwise."""
    try:
        _SYNTAX.parse(source)
    except TemplateSyntaxError as exc:
        raise ValueError(f"template line {exc.lineno}: {exc.message}") from None
    return source


# Only the syntax is checked here; rendering has environments of its own.
_SYNTAX = Environment(autoescape=True)
Template = Annotated[str, AfterValidator(check_template)]


SOURCES = ("ticketmaster", "tmr", "ticketweb")
REGIONS = (
    "AT", "AU", "BE", "CA", "CH", "CZ", "DE", "DK", "ES", "FI",
    "GB", "IE", "MX", "NL", "NO", "NZ", "PL", "SE", "US",
)  # fmt: skip


def one_of(choices: tuple[str, ...], normalise: str) -> Any:
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


Source = Annotated[str, one_of(SOURCES, "lower")]
Region = Annotated[str, one_of(REGIONS, "upper")]


def utc(value: datetime) -> datetime:
    # A date-time without an offset is read as UTC, the way the API reports times.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


FIRST_YEAR, LAST_YEAR = 2000, 2100
"""Dates outside these years are typing mistakes (0001-01-01, 20266-01-01), never shows."""


def _in_years(value: datetime) -> datetime:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise PydanticCustomError(
            "years", f"expected a date from {FIRST_YEAR} to {LAST_YEAR}, got {value.date()}"
        )
    return value


Moment = Annotated[datetime, AfterValidator(utc), AfterValidator(_in_years)]
"""A date-time, read as UTC without an offset, within the years a show can be in."""

PLAIN_TEXT = r"^[^\x00-\x1f\x7f]*$"
"""No control characters: names are shown on pages and terminals and stored in databases
(PostgreSQL refuses a NUL)."""
EventName = Annotated[str, Field(max_length=200, pattern=PLAIN_TEXT)]
Tag = Annotated[str, Field(min_length=1, max_length=40, pattern=PLAIN_TEXT)]
Tags = Annotated[tuple[Tag, ...], Field(max_length=20)]
