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

from monitor.errors import Forbidden, Invalid, NotFound, Refused, Unsupported
from monitor.following import Following
from monitor.server.context import CONTEXT, Context
from monitor.server.pages import render
from monitor.server.writes import MAX_BODY, requeue, service, status_of
from monitor.watching import Watching

WHO = "dashboard"
"""The audit's name for a write made from a signed-in browser."""
SNOOZES = (("1h", "1 hour"), ("8h", "8 hours"), ("1d", "1 day"), ("7d", "a week"))


def csrf_value(context: Context) -> str:
    """What each form carries: derived from the token, so it changes with it, and never
    the token itself."""
    token = context.config.server.token
    secret = b"" if token is None else token.get_secret_value().encode()
    return hmac.new(secret, b"inventory-monitor form", hashlib.sha256).hexdigest()


async def read_form(request: web.Request) -> tuple[Watching, MultiDictProxy[Any]]:
    """The watch service and the form, once its CSRF value is checked."""
    context = request.app[CONTEXT]
    watching = service(context)
    if request.content_type != "application/x-www-form-urlencoded":
        raise Unsupported("the dashboard's forms send form data")
    if (request.content_length or 0) > MAX_BODY:
        raise Invalid("the request body is over 64 KB")
    form = await request.post()
    offered = form.get("csrf")
    if not isinstance(offered, str) or not hmac.compare_digest(
        offered.encode(), csrf_value(context).encode()
    ):
        raise Forbidden(
            "the form is out of date (the token changed?): reload the page and try again",
            field="csrf",
        )
    return watching, form


def refused(request: web.Request, what: str, exc: Refused) -> web.Response:
    """A write a form asked for and the service refused: a page that says why, with the
    field."""
    return render(
        request,
        "problem.html",
        {"what": what, "field": exc.field, "error": str(exc)},
        status=status_of(exc),
    )


def entry_of(form: MultiDictProxy[Any]) -> dict[str, Any]:
    """What the Add form asks to watch, as the API takes it."""
    entered = str(form.get("event", "")).strip()
    body: dict[str, Any] = {"url" if "://" in entered else "id": entered}
    name = str(form.get("name", "")).strip()
    if name:
        body["name"] = name
    region = str(form.get("region", "")).strip()
    if region:
        body["region"] = region
    notify = [str(item) for item in form.getall("notify", [])]
    if notify:
        body["notify"] = notify
    return body


async def act(request: web.Request) -> web.Response:
    """pause, resume, snooze, remove or restore the event's watch."""
    event_id, action = request.match_info["event_id"], request.match_info["action"]
    try:
        watching, form = await read_form(request)
        await _apply(watching, event_id, action, form)
    except Refused as exc:
        return refused(request, f"{action} {event_id}", exc)
    if action == "remove":
        # The list, with a moment to undo it.
        raise web.HTTPSeeOther(f"/?removed={quote(event_id, safe='')}")
    raise web.HTTPSeeOther(f"/events/{quote(event_id, safe='')}")


async def _apply(watching: Watching, event_id: str, action: str, form: Mapping[str, Any]) -> None:
    if action == "pause":
        await watching.pause(event_id, WHO)
    elif action == "resume":
        await watching.pause(event_id, WHO, paused=False)
    elif action == "snooze":
        await watching.snooze(event_id, {"for": str(form.get("for", ""))}, WHO)
    elif action == "restore":
        await watching.restore(event_id, WHO)
    else:
        await watching.remove(event_id, WHO)


async def retry(request: web.Request) -> web.Response:
    delivery_id = request.match_info["delivery_id"]
    context = request.app[CONTEXT]
    try:
        await read_form(request)
        await requeue(context, delivery_id)
    except Refused as exc:
        return refused(request, "retry the delivery", exc)
    raise web.HTTPSeeOther("/#attention")


async def follow(request: web.Request) -> web.Response:
    """The "Follow an artist" form: a search for the artist's shows, each watched until it
    starts."""
    try:
        _, form = await read_form(request)
        following = await _following(request)
        body: dict[str, Any] = {"artist": str(form.get("artist", "")).strip()}
        notify = [str(item) for item in form.getall("notify", [])]
        if notify:
            body["notify"] = notify
        await following.follow(body, WHO)
    except Refused as exc:
        return refused(request, "follow the artist", exc)
    raise web.HTTPSeeOther("/#following")


async def unfollow(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        await read_form(request)
        following = await _following(request)
        await following.unfollow(name, WHO)
    except Refused as exc:
        return refused(request, f"stop the search {name}", exc)
    raise web.HTTPSeeOther("/#following")


async def _following(request: web.Request) -> Following:
    following = request.app[CONTEXT].following
    if following is None:
        raise NotFound("searches are not kept here")
    return following


HANDLERS = (act, retry, follow, unfollow)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/events/{event_id}/{action:pause|resume|snooze|remove|restore}", act)
    router.add_post("/deliveries/{delivery_id}/retry", retry)
    router.add_post("/searches", follow)
    router.add_post("/searches/{name}/remove", unfollow)
