"""A member's dashboard: their shows with statuses in words, their channels and their
settings, with plain HTML forms (they work without script) through the same service as
`/api/me`. Each form carries a CSRF value derived from the member's session.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from monitor.errors import Forbidden, Invalid, Refused, Unsupported
from monitor.notify.channels import channel_document
from monitor.server.context import CONTEXT, PRINCIPAL
from monitor.server.dashboard import LABELS, RESALE_LABELS
from monitor.server.forms import refused
from monitor.server.pages import render
from monitor.server.signin import form_value, session_of
from monitor.server.writes import MAX_BODY
from monitor.store.accounts import User
from monitor.subscribing import Subscribing
from monitor.users import Users

BUYABLE = ["TICKETS_AVAILABLE", "FEW_TICKETS_LEFT"]
"""What "only when I can buy" asks for."""


def _signed_in(request: web.Request) -> tuple[User, Subscribing, Users, str]:
    context = request.app[CONTEXT]
    principal = request.get(PRINCIPAL)
    session = session_of(request)
    if (
        principal is None
        or principal.user is None
        or session is None
        or context.subscribing is None
        or context.users is None
    ):
        raise web.HTTPSeeOther("/signin")
    return principal.user, context.subscribing, context.users, session


async def page(
    request: web.Request, tested: str | None = None, calendar: str | None = None
) -> web.Response:
    user, subscribing, _, session = _signed_in(request)
    shows = [view.document() for view in await subscribing.subscriptions(user)]
    shows.sort(key=lambda show: ((show["name"] or show["id"]).lower(), show["id"]))
    return render(
        request,
        "member.html",
        {
            "user": user,
            "shows": shows,
            "channels": [channel_document(c) for c in await subscribing.channels(user)],
            "quiet": user.settings.get("quiet_hours") or {},
            "labels": LABELS,
            "resale_labels": RESALE_LABELS,
            "csrf": form_value(session),
            "tested": tested,
            "calendar": calendar,
            "troubled": await subscribing.troubled(user),
            "searches": await subscribing.searches(user),
        },
    )


async def _form(request: web.Request) -> tuple[User, Subscribing, Users, dict[str, str]]:
    user, subscribing, users, session = _signed_in(request)
    if request.content_type != "application/x-www-form-urlencoded":
        raise Unsupported("the dashboard's forms send form data")
    if (request.content_length or 0) > MAX_BODY:
        raise Invalid("the request body is over 64 KB")
    form = {key: str(value) for key, value in (await request.post()).items()}
    if not hmac.compare_digest(form.get("csrf", "").encode(), form_value(session).encode()):
        raise Forbidden("the form is out of date: reload the page and try again", field="csrf")
    return user, subscribing, users, form


async def follow(request: web.Request) -> web.Response:
    try:
        user, subscribing, _, form = await _form(request)
        entered = form.get("event", "").strip()
        body: dict[str, Any] = {"url" if "://" in entered else "id": entered}
        if form.get("buyable"):
            body["when"] = BUYABLE
        await subscribing.subscribe(user, body)
    except Refused as exc:
        if exc.field in ("id", "url"):
            exc.field = "event"
        return refused(request, "follow the show", exc)
    raise web.HTTPSeeOther("/#shows")


async def follow_artist(request: web.Request) -> web.Response:
    """A search of the member's own for an artist, named after them."""
    try:
        user, subscribing, _, form = await _form(request)
        artist = form.get("artist", "").strip()
        body: dict[str, Any] = {"name": _search_name(artist), "artist": artist}
        if form.get("buyable"):
            body["when"] = BUYABLE
        await subscribing.add_search(user, body)
    except Refused as exc:
        return refused(request, "follow the artist", exc)
    raise web.HTTPSeeOther("/#artists")


def _search_name(artist: str) -> str:
    """A search's name from an artist's: `Arctic Monkeys` is `arctic-monkeys`."""
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in artist.lower()).split()
    return "-".join(words)[:30].strip("-") or "artist"


async def forget_search(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    try:
        user, subscribing, _, _ = await _form(request)
        await subscribing.remove_search(user, name)
    except Refused as exc:
        return refused(request, f"remove the search {name}", exc)
    raise web.HTTPSeeOther("/#artists")


async def act(request: web.Request) -> web.Response:
    event_id, action = request.match_info["event_id"], request.match_info["action"]
    try:
        user, subscribing, _, _ = await _form(request)
        if action == "remove":
            await subscribing.unsubscribe(user, event_id)
        else:
            await subscribing.pause(user, event_id, paused=action == "pause")
    except Refused as exc:
        return refused(request, f"{action} {event_id}", exc)
    raise web.HTTPSeeOther("/#shows")


async def add_channel(request: web.Request) -> web.Response:
    try:
        user, subscribing, _, form = await _form(request)
        body = {key: form[key] for key in ("name", "url", "type") if form.get(key)}
        await subscribing.add_channel(user, body)
    except Refused as exc:
        return refused(request, "add the channel", exc)
    raise web.HTTPSeeOther("/#channels")


async def channel(request: web.Request) -> web.Response:
    name, action = request.match_info["name"], request.match_info["action"]
    try:
        user, subscribing, _, _ = await _form(request)
        if action == "remove":
            await subscribing.remove_channel(user, name)
            raise web.HTTPSeeOther("/#channels")
        delivered, said = await subscribing.test_channel(user, name)
    except Refused as exc:
        return refused(request, f"{action} the channel {name}", exc)
    if delivered:
        return await page(request, tested=f"A test message went to {name}: {said}")
    return await page(request, tested=f"The test message to {name} did not get through: {said}")


async def settings(request: web.Request) -> web.Response:
    try:
        user, _, users, form = await _form(request)
        quiet = None
        if form.get("from") or form.get("to"):
            quiet = {"from": form.get("from", ""), "to": form.get("to", "")}
        await users.update_settings(
            user, {"timezone": form.get("timezone") or None, "quiet_hours": quiet}
        )
    except Refused as exc:
        return refused(request, "save the settings", exc)
    raise web.HTTPSeeOther("/#settings")


async def calendar(request: web.Request) -> web.Response:
    """A new address for the member's calendar feed, shown once on their page."""
    try:
        user, _, users, _ = await _form(request)
        key = await users.new_calendar_key(user)
    except Refused as exc:
        return refused(request, "make a calendar link", exc)
    address = f"{request.scheme}://{request.host}/api/me/calendar.ics?{urlencode({'key': key})}"
    return await page(request, calendar=address)


HANDLERS = (follow, follow_artist, forget_search, act, add_channel, channel, settings, calendar)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/me/subscriptions", follow)
    router.add_post("/me/subscriptions/{event_id}/{action:pause|resume|remove}", act)
    router.add_post("/me/searches", follow_artist)
    router.add_post("/me/searches/{name}/remove", forget_search)
    router.add_post("/me/channels", add_channel)
    router.add_post("/me/channels/{name}/{action:test|remove}", channel)
    router.add_post("/me/settings", settings)
    router.add_post("/me/calendar", calendar)
