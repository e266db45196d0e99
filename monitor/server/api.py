"""The JSON API's reads: watched events, one event's history and recent changes, with the
models the OpenAPI document and the tests validate answers against."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel

from monitor.models import STATUS_BY_NAME, Availability, Change
from monitor.notify.documents import change_document
from monitor.server.context import CONTEXT, Context
from monitor.server.routes import NO_NUL, Answer, Query, Route, ok
from monitor.store.reads import MAX_PAGE
from monitor.store.rows import EventRow


class VenueOut(BaseModel):
    name: str | None
    city: str | None
    country: str | None


class EventInfoOut(BaseModel):
    """What is known of the event, from the configuration and the Discovery API; null when
    unknown."""

    id: str
    name: str | None
    starts_at: str | None
    timezone: str | None
    venue: VenueOut
    url: str | None
    """The event's page, on its own market's site."""
    lifecycle: str | None
    """onsale, offsale, canceled, postponed or rescheduled."""


class EventOut(EventInfoOut):
    """What is known of a watched event (the configured name wins over Discovery's), and
    what was seen of it."""

    found_by: str | None
    """The `discover:` search that added the event; None for the configuration's own."""
    status: str | None
    """None until the first reading."""
    resale_status: str | None
    status_detail: str | None
    """Why Ticketmaster answered UNKNOWN, as it said it: INVALID_EVENT_ID (it does not know
    the event), NOT_SUPPORTED, ..."""
    resale_status_detail: str | None
    first_seen_at: str | None
    last_seen_at: str | None
    last_changed_at: str | None
    next_poll_at: str | None


class EventsPage(BaseModel):
    events: list[EventOut]
    total: int
    """Watched events matching the filter, across pages."""
    next: str | None
    """Pass as `after` for the next page; None on the last page."""


class SnapshotOut(BaseModel):
    observed_at: str
    status: str
    resale_status: str


class AvailabilityOut(BaseModel):
    status: str
    resale_status: str


class LifecycleOut(BaseModel):
    lifecycle: str | None
    """onsale, offsale, canceled, postponed or rescheduled; None when unknown."""


class SaleOut(BaseModel):
    kind: Literal["public", "presale"]
    name: str | None
    starts_at: str


class ChangeOut(BaseModel):
    """The same document as a webhook's `data`, with `observed_at` to the millisecond."""

    change_id: str
    event_id: str
    event_name: str | None
    kind: Literal["inventory", "lifecycle", "sale_opened"]
    previous: AvailabilityOut | LifecycleOut | None = None
    """Availability for an inventory change (None for a first reading that was reported,
    `notify_baseline`); the lifecycle code before, for a lifecycle change; absent for a
    sale opening."""
    current: AvailabilityOut | LifecycleOut | None = None
    """Availability, or the lifecycle code after; absent for a sale opening."""
    sale: SaleOut | None = None
    """The sale window that opened, for a sale opening."""
    changed: list[str]
    """status, resale_status or both; lifecycle; or sale."""
    observed_at: str
    event: EventInfoOut


class EventDetail(BaseModel):
    event: EventOut
    snapshots: list[SnapshotOut]
    changes: list[ChangeOut]


class ChangesPage(BaseModel):
    changes: list[ChangeOut]


class Problem(BaseModel):
    error: str
    field: str | None = None
    """The field at fault, for bad input to a write."""


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    reasons: list[str]
    """database_unavailable, storage_failing, invalid_api_key, quota_exhausted,
    upstream_degraded or scheduler_stalled."""
    last_successful_poll_at: str | None


def iso_ms(at: float) -> str:
    """RFC 3339 UTC to the millisecond: what `since` takes back."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def when(at: float | None) -> str | None:
    return None if at is None else iso_ms(at)


def event_out(row: EventRow) -> dict[str, Any]:
    current = row.current
    info = row.info
    venue = info.venue
    return {
        "id": row.event_id,
        "name": info.name,
        "starts_at": when(info.starts_at),
        "timezone": info.timezone,
        "venue": {"name": venue.name, "city": venue.city, "country": venue.country},
        "url": info.url,
        "lifecycle": info.lifecycle,
        "found_by": row.found_by,
        "status": current and current.status.value,
        "resale_status": current and current.resale_status.value,
        "status_detail": row.detail and row.detail.status,
        "resale_status_detail": row.detail and row.detail.resale,
        "first_seen_at": when(row.first_seen_at),
        "last_seen_at": when(row.last_seen_at),
        "last_changed_at": when(row.last_changed_at),
        "next_poll_at": when(row.next_due_at),
    }


def change_out(change: Change) -> dict[str, Any]:
    # Milliseconds, so that a time passed back as `since` leaves this change out.
    return {**change_document(change), "observed_at": iso_ms(change.observed_at)}


def snapshot_out(at: float, availability: Availability) -> dict[str, Any]:
    return {
        "observed_at": iso_ms(at),
        "status": availability.status.value,
        "resale_status": availability.resale_status.value,
    }


def json_response(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=orjson.dumps({"error": message}).decode(), content_type="application/json"
    )


def query_text(request: web.Request, name: str, *, empty_is_absent: bool = True) -> str | None:
    """A text parameter; empty counts as absent where the schema allows it. Text no
    database can hold (a NUL) is a 400, not a 500 from the driver."""
    text = request.query.get(name)
    if text is None or (not text and empty_is_absent):
        return None
    if "\x00" in text:
        raise bad_request(f"{name}: must not contain a NUL character")
    return text


def query_int(request: web.Request, name: str, default: int, maximum: int) -> int:
    text = query_text(request, name, empty_is_absent=False)
    if text is None:
        return default
    value = int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else 0
    if not 1 <= value <= maximum:
        raise bad_request(f"{name}: expected a whole number from 1 to {maximum}, got {text!r}")
    return value


def query_since(request: web.Request, name: str = "since") -> float | None:
    """The first moment after an ISO 8601 date-time (UTC without an offset) or Unix time,
    to the millisecond: passing back a time the API gave leaves out what it stamped."""
    text = query_text(request, name, empty_is_absent=False)
    if text is None:
        return None
    problem = bad_request(f"{name}: expected an ISO 8601 date-time or Unix seconds, got {text!r}")
    try:
        moment = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
            moment = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
        except (ValueError, OverflowError):
            raise problem from None
    if not _EARLIEST <= moment <= _LATEST:
        raise problem
    return (math.floor(round(moment * 1000, 3)) + 1) / 1000


_EARLIEST, _LATEST = -62135596800.0, 253402300799.0
"""0001-01-01 and 9999-12-31T23:59:59Z: the times a date-time can name."""


async def list_events(request: web.Request) -> web.Response:
    context: Context = request.app[CONTEXT]
    status_text = query_text(request, "status")
    status = None if status_text is None else STATUS_BY_NAME.get(status_text)
    if status_text is not None and status is None:
        known = ", ".join(STATUS_BY_NAME)
        raise bad_request(f"status: expected one of {known}, got {status_text!r}")
    page = await context.reads.events_page(
        after=query_text(request, "after"),
        limit=query_int(request, "limit", 200, MAX_PAGE),
        status=status,
        search=query_text(request, "q"),
    )
    return json_response(
        {
            "events": [event_out(row) for row in page.rows],
            "total": page.total,
            "next": page.next_after,
        }
    )


async def get_event(request: web.Request) -> web.Response:
    context: Context = request.app[CONTEXT]
    event_id = request.match_info["event_id"]
    if "\x00" in event_id:
        raise bad_request("event_id: must not contain a NUL character")
    since = query_since(request, "since")
    limit = query_int(request, "limit", 1000, MAX_PAGE)
    row = await context.reads.event_row(event_id)
    if row is None:
        return json_response({"error": f"no event {event_id!r} has been watched"}, 404)
    snapshots = await context.reads.snapshots_of(event_id, limit, since)
    history = await context.reads.changes_of(event_id, limit, since)
    return json_response(
        {
            "event": event_out(row),
            "snapshots": [snapshot_out(at, availability) for at, availability in snapshots],
            "changes": [change_out(change) for change in history],
        }
    )


async def list_changes(request: web.Request) -> web.Response:
    context: Context = request.app[CONTEXT]
    history = await context.reads.changes_of(
        None, query_int(request, "limit", 100, MAX_PAGE), query_since(request, "since")
    )
    return json_response({"changes": [change_out(change) for change in history]})


LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}
SINCE = Query(
    "since",
    "Only what happened after this ISO 8601 date-time or Unix time.",
    {
        "anyOf": [
            {"type": "string", "format": "date-time"},
            {"type": "number", "minimum": _EARLIEST, "maximum": _LATEST},
        ]
    },
)
BAD_QUERY = Answer("A query parameter is invalid; `error` names it.", Problem)
UNAUTHORIZED = Answer("A token is configured and none was given.", Problem)
BAD_BODY = {
    400: Answer("Bad input; `field` names it.", Problem),
    415: Answer("The body is not JSON.", Problem),
}
WRITES_REFUSED = {
    401: UNAUTHORIZED,
    403: Answer("Writes are off: `server.token` is not set.", Problem),
}

ROUTES = (
    Route(
        "GET",
        "/api/events",
        list_events,
        "Watched events with their current status, in event ID order",
        {200: ok(EventsPage), 400: BAD_QUERY, 401: UNAUTHORIZED},
        query=(
            Query("limit", "Events per page.", LIMIT),
            Query(
                "after",
                "The `next` cursor of the previous page.",
                {"type": "string", "pattern": NO_NUL},
            ),
            Query(
                "status",
                "Only events with this status.",
                {"type": "string", "enum": ["", *STATUS_BY_NAME]},
            ),
            Query(
                "q",
                "Only events whose ID or name contains this.",
                {"type": "string", "pattern": NO_NUL},
            ),
        ),
    ),
    Route(
        "GET",
        "/api/events/{event_id}",
        get_event,
        "One event with its snapshots and changes",
        {
            200: ok(EventDetail),
            400: BAD_QUERY,
            404: Answer("The event has never been watched.", Problem),
            401: UNAUTHORIZED,
        },
        query=(SINCE, Query("limit", "Snapshots and changes at most.", LIMIT)),
    ),
    Route(
        "GET",
        "/api/changes",
        list_changes,
        "Changes after `since` (oldest first), or the latest ones",
        {200: ok(ChangesPage), 400: BAD_QUERY, 401: UNAUTHORIZED},
        query=(SINCE, Query("limit", "Changes at most.", LIMIT)),
    ),
)
