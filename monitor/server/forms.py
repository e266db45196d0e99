"""The dashboard's controls: plain HTML forms (they work without script) that add, pause,
resume, snooze and remove watches and retry dead deliveries, through the same service as
the JSON API.

A form is the one request another site's page can send, so each carries a CSRF value
derived from the token, on top of the SameSite=Strict session cookie. A done write
redirects back to a page; a refused one is a page that says why, with the field.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from monitor.server.context import CONTEXT, Context
from monitor.server.pages import render
from monitor.server.writes import MAX_BODY, requeue, service
from monitor.watching import WatchError, Watching

WHO = "dashboard"
"""The audit's name for a write made from a signed-in browser."""
SNOOZES = (("1h", "1 hour"), ("8h", "8 hours"), ("1d", "1 day"), ("7d", "a week"))


def csrf_value(context: Context) -> str:
    """What each form carries: derived from the token, so it changes with it, and never
    the token itself."""
    token = context.config.server.token
    secret = b"" if token is None else token.get_secret_value().encode()
    return hmac.new(secret, b"inventory-monitor form", hashlib.sha256).hexdigest()


async def _form(
    request: web.Request,
) -> tuple[Watching, MultiDictProxy[Any]]:
    context = request.app[CONTEXT]
    watching = service(context)
    if request.content_type != "application/x-www-form-urlencoded":
        raise WatchError("the dashboard's forms send form data", status=415)
    if (request.content_length or 0) > MAX_BODY:
        raise WatchError("the request body is over 64 KB", status=400)
    form = await request.post()
    offered = form.get("csrf")
    if not isinstance(offered, str) or not hmac.compare_digest(
        offered.encode(), csrf_value(context).encode()
    ):
        raise WatchError(
            "the form is out of date (the token changed?): reload the page and try again",
            status=403,
            field="csrf",
        )
    return watching, form


def refused(request: web.Request, what: str, exc: WatchError) -> web.Response:
    """A write a form asked for and the service refused: a page that says why, with the
    field."""
    return render(
        request,
        "problem.html",
        {"what": what, "field": exc.field, "error": str(exc)},
        status=exc.status if exc.status in (400, 403, 404, 409, 415) else 400,
    )


async def add(request: web.Request) -> web.Response:
    try:
        watching, form = await _form(request)
        entered = str(form.get("event", "")).strip()
        body: dict[str, Any] = {"url" if "://" in entered else "id": entered}
        name = str(form.get("name", "")).strip()
        if name:
            body["name"] = name
        notify = [str(item) for item in form.getall("notify", [])]
        if notify:
            body["notify"] = notify
        view = await watching.add(body, WHO)
    except WatchError as exc:
        if exc.field in ("id", "url"):
            exc.field = "event"
        return refused(request, "add the watch", exc)
    raise web.HTTPSeeOther(f"/events/{quote(view.event_id, safe='')}")


async def act(request: web.Request) -> web.Response:
    """pause, resume, snooze or remove the event's watch."""
    event_id, action = request.match_info["event_id"], request.match_info["action"]
    try:
        watching, form = await _form(request)
        await _apply(watching, event_id, action, form)
    except WatchError as exc:
        return refused(request, f"{action} {event_id}", exc)
    raise web.HTTPSeeOther("/" if action == "remove" else f"/events/{quote(event_id, safe='')}")


async def _apply(watching: Watching, event_id: str, action: str, form: Mapping[str, Any]) -> None:
    if action == "pause":
        await watching.pause(event_id, WHO)
    elif action == "resume":
        await watching.pause(event_id, WHO, paused=False)
    elif action == "snooze":
        await watching.snooze(event_id, {"for": str(form.get("for", ""))}, WHO)
    else:
        await watching.remove(event_id, WHO)


async def retry(request: web.Request) -> web.Response:
    delivery_id = request.match_info["delivery_id"]
    context = request.app[CONTEXT]
    try:
        await _form(request)
        await requeue(context, delivery_id)
    except WatchError as exc:
        return refused(request, "retry the delivery", exc)
    raise web.HTTPSeeOther("/#attention")


HANDLERS = (add, act, retry)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/watches", add)
    router.add_post("/events/{event_id}/{action:pause|resume|snooze|remove}", act)
    router.add_post("/deliveries/{delivery_id}/retry", retry)
