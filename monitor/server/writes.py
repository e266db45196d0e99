"""How the JSON API takes writes and answers refusals: bodies read, problem documents,
and the HTTP status of each kind of refusal.

Writes need `server.token`: without one they answer 403 however the request came, since
any web page can POST to a daemon on localhost. They take JSON alone (a form, which another
site's page can send, is refused), at most 64 KB of it; bad input is a 400 whose problem
document names the field. Every write is audited and reaches the watchlist of this replica
at once, and of the others within a tick.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from monitor.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Refused,
    Unauthorized,
    Unsupported,
)
from monitor.server.api import json_response
from monitor.server.context import PRINCIPAL, Context
from monitor.watching import Watching

MAX_BODY = 64 * 1024
WHO = "api"
"""The audit's name for a write made with the operator's token; a user's write is audited
under their name."""
Handler = Callable[[web.Request], Awaitable[web.Response]]
ENABLE = (
    "writes are off until server.token is set in the config file (token: ${MONITOR_TOKEN}); "
    "then send it as Authorization: Bearer ..."
)


STATUS: dict[type[Refused], int] = {
    Invalid: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Unsupported: 415,
}
"""The HTTP status of each kind of refusal: the services say what went wrong, this says how
the web says it."""


def status_of(refusal: Refused) -> int:
    return next((status for kind, status in STATUS.items() if isinstance(refusal, kind)), 400)


def problem(message: str, status: int, field: str | None = None) -> web.Response:
    return json_response({"error": message, "field": field}, status)


def who_of(request: web.Request) -> str:
    principal = request.get(PRINCIPAL)
    return WHO if principal is None else str(principal.name)


def service(context: Context) -> Watching:
    """The watch service, when writes are enabled; else the 403 that says how to enable them."""
    if not context.writable or context.watching is None:
        raise web.HTTPForbidden(
            text=orjson.dumps({"error": ENABLE, "field": None}).decode(),
            content_type="application/json",
        )
    return context.watching


async def read_body(request: web.Request) -> bytes:
    """The body, refused past MAX_BODY before more of it is read."""
    too_large = Invalid("the request body is over 64 KB", field=None)
    if (request.content_length or 0) > MAX_BODY:
        raise too_large
    body = bytearray()
    async for chunk in request.content.iter_chunked(16 * 1024):
        body += chunk
        if len(body) > MAX_BODY:
            raise too_large
    return bytes(body)


async def json_body(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    """A JSON object; a body-less request is an empty one where none is `required`."""
    if (request.body_exists or required) and request.content_type != "application/json":
        raise Unsupported("send JSON (Content-Type: application/json)", field="Content-Type")
    raw = await read_body(request)
    if not raw and not required:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    _once_each(raw)
    return body


def _once_each(raw: bytes) -> None:
    """Refuses a key given twice in one object: parsers disagree on which one counts, so a
    proxy or a log may read another body than this server."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                raise Invalid(f"the key {key!r} is given twice", field=key)
            seen.add(key)
        return dict(items)

    json.loads(raw, object_pairs_hook=pairs)


def event_id_of(request: web.Request) -> str:
    """The route's `{event_id}`: anything but NUL."""
    event_id = request.match_info["event_id"]
    if "\x00" in event_id:
        raise Invalid("must not contain a NUL character", field="event_id")
    return event_id


def answers_problems(handler: Handler) -> Handler:
    """A refused write is a problem document, with the status its kind maps to."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except Refused as exc:
            return problem(str(exc), status_of(exc), exc.field)

    return wrapped


async def requeue(context: Context, delivery_id: str) -> None:
    """Queue a dead delivery again, due now."""
    if context.retry is None or "\x00" in delivery_id or not await context.retry(delivery_id):
        raise NotFound(f"no dead delivery has the ID {delivery_id!r}")
