"""The JSON API of watches: listed, added, changed, paused, snoozed, removed and restored;
and dead deliveries queued again. Writes need `server.token` (see `server.writes`)."""

from __future__ import annotations

import bisect
from typing import Any, Literal
from urllib.parse import urlencode

from aiohttp import web
from pydantic import BaseModel

from monitor.errors import NotFound
from monitor.inputs import SettingsInput, SnoozeInput, WatchInput
from monitor.server.api import (
    BAD_BODY,
    UNAUTHORIZED,
    WRITES_REFUSED,
    Problem,
    json_response,
    query_int,
    query_text,
)
from monitor.server.context import CONTEXT
from monitor.server.routes import NO_NUL, Answer, Handler, Query, Route, ok
from monitor.server.writes import answers_problems, event_id_of, json_body, requeue, service, who_of
from monitor.store.reads import MAX_PAGE
from monitor.watching import WatchView


class WatchOut(BaseModel):
    id: str
    origin: Literal["config", "api", "discover"]
    """config: declared in the config file (change or remove it there); api: added through
    the API, the CLI or the dashboard; discover: found by a `discover:` search."""
    name: str | None
    search: str | None
    """The `discover:` search that found it."""
    settings: dict[str, Any]
    """As an entry under `events:` would say them."""
    paused: bool
    """Not polled; its state and history stay."""
    snoozed_until: str | None
    """Polled, but nobody is told before then; then its latest state, once."""


class WatchesPage(BaseModel):
    watches: list[WatchOut]
    next: str | None
    """The link to the next page; None on the last page."""


class Retried(BaseModel):
    retried: str


WATCHES_PAGE = 500
"""Watches in one page of `GET /api/watches` unless `limit` says otherwise."""


@answers_problems
async def list_watches(request: web.Request) -> web.Response:
    """Watches in event ID order, a page at a time: `next` links to the page after."""
    limit = query_int(request, "limit", WATCHES_PAGE, MAX_PAGE)
    after = query_text(request, "after")
    watching = request.app[CONTEXT].watching
    views = [] if watching is None else await watching.list()
    start = 0 if after is None else bisect.bisect_right(views, after, key=_event_id_of)
    page = views[start : start + limit]
    link = None
    if start + limit < len(views):
        link = f"/api/watches?{urlencode({'after': page[-1].event_id, 'limit': limit})}"
    return json_response({"watches": [view.document() for view in page], "next": link})


def _event_id_of(view: WatchView) -> str:
    return view.event_id


@answers_problems
async def get_watch(request: web.Request) -> web.Response:
    watching = request.app[CONTEXT].watching
    event_id = event_id_of(request)
    if watching is None:
        raise NotFound(f"no watch for event {event_id!r}")
    return json_response((await watching.get(event_id)).document())


@answers_problems
async def add_watch(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    watching = service(context)
    view = await watching.add(await json_body(request), who_of(request))
    response = json_response(view.document(), 201)
    response.headers["Location"] = f"/api/watches/{view.event_id}"
    return response


@answers_problems
async def change_watch(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    watching = service(context)
    view = await watching.update(event_id_of(request), await json_body(request), who_of(request))
    return json_response(view.document())


@answers_problems
async def remove_watch(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    watching = service(context)
    await json_body(request, required=False)
    await watching.remove(event_id_of(request), who_of(request))
    return web.Response(status=204)


@answers_problems
async def pause_watch(request: web.Request) -> web.Response:
    return await _pause(request, paused=True)


@answers_problems
async def resume_watch(request: web.Request) -> web.Response:
    return await _pause(request, paused=False)


async def _pause(request: web.Request, *, paused: bool) -> web.Response:
    context = request.app[CONTEXT]
    watching = service(context)
    await json_body(request, required=False)
    view = await watching.pause(event_id_of(request), who_of(request), paused=paused)
    return json_response(view.document())


@answers_problems
async def snooze_watch(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    watching = service(context)
    view = await watching.snooze(event_id_of(request), await json_body(request), who_of(request))
    return json_response(view.document())


@answers_problems
async def restore_watch(request: web.Request) -> web.Response:
    watching = service(request.app[CONTEXT])
    await json_body(request, required=False)
    view = await watching.restore(event_id_of(request), who_of(request))
    return json_response(view.document())


@answers_problems
async def retry_delivery(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    service(context)
    await json_body(request, required=False)
    delivery_id = request.match_info["delivery_id"]
    await requeue(context, delivery_id)
    return json_response({"retried": delivery_id})


NO_WATCH = {404: Answer("No watch has this event ID.", Problem)}


def _acting(handler: Handler, path: str, summary: str, **extra: Any) -> Route:
    """A POST that acts on one watch and answers with it."""
    answers = {200: ok(WatchOut), **NO_WATCH, **WRITES_REFUSED}
    if "body" in extra:
        answers |= BAD_BODY
    return Route("POST", path, handler, summary, answers, **extra)


def routes(notifiers: tuple[str, ...] = ()) -> tuple[Route, ...]:
    """The routes; `notify` takes the configured `notifiers` alone."""
    notify = {"notify": notifiers}
    return (
        Route(
            "GET",
            "/api/watches",
            list_watches,
            "Every watch: the config file's, the API's and the searches', in event ID order, "
            "a page at a time",
            {
                200: ok(WatchesPage),
                400: Answer("A query parameter is invalid; `error` names it.", Problem),
                401: UNAUTHORIZED,
            },
            query=(
                Query(
                    "limit",
                    "Watches per page (500 unless given).",
                    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                ),
                Query(
                    "after",
                    "Only watches after this event ID: the `next` link carries it.",
                    {"type": "string", "pattern": NO_NUL},
                ),
            ),
        ),
        Route(
            "POST",
            "/api/watches",
            add_watch,
            "Watch an event, by its ID or its link, with the settings of an entry under `events:`",
            {
                201: ok(WatchOut, "Watched"),
                **BAD_BODY,
                409: Answer("The event is watched already.", Problem),
                **WRITES_REFUSED,
            },
            body=WatchInput,
            body_text="Checked as the config file is: notifiers must exist, a link must be an "
            "event's page on a market the API answers for, durations are positive and at most "
            "100 years.",
            enums=notify,
        ),
        Route(
            "GET",
            "/api/watches/{event_id}",
            get_watch,
            "One watch",
            {200: ok(WatchOut), **NO_WATCH, 401: UNAUTHORIZED},
        ),
        Route(
            "PATCH",
            "/api/watches/{event_id}",
            change_watch,
            "Change a watch's settings (a null removes one); not the config file's",
            {
                200: ok(WatchOut),
                **BAD_BODY,
                **NO_WATCH,
                409: Answer("The watch is the config file's: change it there.", Problem),
                **WRITES_REFUSED,
            },
            body=SettingsInput,
            body_text="The settings to change.",
            enums=notify,
        ),
        Route(
            "DELETE",
            "/api/watches/{event_id}",
            remove_watch,
            "Stop watching an event; its history stays",
            {
                204: Answer("No longer watched"),
                **NO_WATCH,
                409: Answer("The watch is the config file's: remove it there.", Problem),
                **WRITES_REFUSED,
            },
        ),
        _acting(
            pause_watch,
            "/api/watches/{event_id}/pause",
            "Stop polling the event; state and history stay",
        ),
        _acting(resume_watch, "/api/watches/{event_id}/resume", "Poll a paused event again"),
        _acting(
            snooze_watch,
            "/api/watches/{event_id}/snooze",
            "Poll the event but tell nobody until then; then its latest state, once",
            body=SnoozeInput,
            body_text="For how long, or until when (in the future).",
        ),
        Route(
            "POST",
            "/api/watches/{event_id}/restore",
            restore_watch,
            "Undo the removal of a watch: watched again as it was",
            {
                200: ok(WatchOut),
                409: Answer("The event's last write was not a removal.", Problem),
                **WRITES_REFUSED,
            },
        ),
        Route(
            "POST",
            "/api/deliveries/{delivery_id}/retry",
            retry_delivery,
            "Send a dead delivery again",
            {
                200: ok(Retried, "Queued again"),
                404: Answer("No dead delivery has this ID.", Problem),
                **WRITES_REFUSED,
            },
        ),
    )
