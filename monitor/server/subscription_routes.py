"""The JSON API of what a user follows: `/api/me/subscriptions` (events, each with its own
settings) and `/api/me/searches` (artists, venues or keywords whose shows they follow).
Another user's subscription answers 404, as one that does not exist."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from monitor.inputs import SnoozeInput, SubscriptionInput, SubscriptionSettings
from monitor.server.account_routes import MEMBERS_ONLY, signed_in, subscribing_of
from monitor.server.api import BAD_BODY, Problem, json_response
from monitor.server.routes import Answer, Handler, Route, ok
from monitor.server.writes import answers_problems, event_id_of, json_body
from monitor.store.subscriptions import UserSearch
from monitor.subscribing import SearchInput


class SubscriptionOut(BaseModel):
    id: str
    url: str | None
    region: str | None
    name: str | None
    status: str | None
    resale_status: str | None
    notify: list[str] | None
    when: list[str] | None
    interval: str | None
    resale: bool
    lifecycle: bool
    sales: bool
    paused: bool
    snoozed_until: str | None


class SubscriptionsOut(BaseModel):
    subscriptions: list[SubscriptionOut]


class SearchOut(BaseModel):
    name: str
    artist: str | None = None
    """The artist's name as Discovery knows it, when the search was made with one."""
    keyword: str | None = None
    attraction_id: str | None = None
    venue_id: str | None = None
    country_code: str | None = None
    city: str | None = None
    classification: str | None = None
    dma_id: str | None = None
    window: str | None = None
    max_events: int | None = None
    when: list[str] | None = None


class SearchesOut(BaseModel):
    searches: list[SearchOut]


def search_document(search: UserSearch) -> dict[str, Any]:
    return {"name": search.name, **search.filters}


@answers_problems
async def list_searches(request: web.Request) -> web.Response:
    searches = await subscribing_of(request).searches(signed_in(request))
    return json_response({"searches": [search_document(s) for s in searches]})


@answers_problems
async def add_search(request: web.Request) -> web.Response:
    user = signed_in(request)
    search = await subscribing_of(request).add_search(user, await json_body(request))
    response = json_response(search_document(search), 201)
    response.headers["Location"] = f"/api/me/searches/{search.name}"
    return response


@answers_problems
async def remove_search(request: web.Request) -> web.Response:
    user = signed_in(request)
    await json_body(request, required=False)
    await subscribing_of(request).remove_search(user, request.match_info["name"])
    return web.Response(status=204)


@answers_problems
async def list_subscriptions(request: web.Request) -> web.Response:
    views = await subscribing_of(request).subscriptions(signed_in(request))
    return json_response({"subscriptions": [view.document() for view in views]})


@answers_problems
async def subscribe(request: web.Request) -> web.Response:
    user = signed_in(request)
    view = await subscribing_of(request).subscribe(user, await json_body(request))
    response = json_response(view.document(), 201)
    response.headers["Location"] = f"/api/me/subscriptions/{view.subscription.event_id}"
    return response


@answers_problems
async def get_subscription(request: web.Request) -> web.Response:
    view = await subscribing_of(request).subscription(signed_in(request), event_id_of(request))
    return json_response(view.document())


@answers_problems
async def change_subscription(request: web.Request) -> web.Response:
    user = signed_in(request)
    body = await json_body(request)
    view = await subscribing_of(request).update(user, event_id_of(request), body)
    return json_response(view.document())


@answers_problems
async def unsubscribe(request: web.Request) -> web.Response:
    user = signed_in(request)
    await json_body(request, required=False)
    await subscribing_of(request).unsubscribe(user, event_id_of(request))
    return web.Response(status=204)


@answers_problems
async def pause_subscription(request: web.Request) -> web.Response:
    return await _pause(request, paused=True)


@answers_problems
async def resume_subscription(request: web.Request) -> web.Response:
    return await _pause(request, paused=False)


async def _pause(request: web.Request, *, paused: bool) -> web.Response:
    user = signed_in(request)
    await json_body(request, required=False)
    view = await subscribing_of(request).pause(user, event_id_of(request), paused=paused)
    return json_response(view.document())


@answers_problems
async def snooze_subscription(request: web.Request) -> web.Response:
    user = signed_in(request)
    body = await json_body(request)
    view = await subscribing_of(request).snooze(user, event_id_of(request), body)
    return json_response(view.document())


MINE = {404: Answer("You do not follow this event.", Problem)}


def _acting(handler: Handler, path: str, summary: str, **extra: Any) -> Route:
    """A POST that acts on one subscription and answers with it."""
    answers = {200: ok(SubscriptionOut), **MINE, **MEMBERS_ONLY}
    if "body" in extra:
        answers |= BAD_BODY
    return Route("POST", path, handler, summary, answers, **extra)


ROUTES = (
    Route(
        "GET",
        "/api/me/subscriptions",
        list_subscriptions,
        "The events you follow, with their statuses",
        {200: ok(SubscriptionsOut), **MEMBERS_ONLY},
    ),
    Route(
        "POST",
        "/api/me/subscriptions",
        subscribe,
        "Follow an event, by its ID or its link",
        {
            201: ok(SubscriptionOut, "Followed"),
            **BAD_BODY,
            409: Answer(
                "You follow it already, the limit is reached, or `notify` names a channel you "
                "do not have.",
                Problem,
            ),
            **MEMBERS_ONLY,
        },
        body=SubscriptionInput,
        body_text="The event and how to hear of it.",
    ),
    Route(
        "GET",
        "/api/me/subscriptions/{event_id}",
        get_subscription,
        "One of your subscriptions",
        {200: ok(SubscriptionOut), 400: BAD_BODY[400], **MINE, **MEMBERS_ONLY},
    ),
    Route(
        "PATCH",
        "/api/me/subscriptions/{event_id}",
        change_subscription,
        "Change a subscription (a null removes a setting)",
        {
            200: ok(SubscriptionOut),
            **BAD_BODY,
            **MINE,
            409: Answer("`notify` names a channel you do not have.", Problem),
            **MEMBERS_ONLY,
        },
        body=SubscriptionSettings,
        body_text="The settings to change.",
    ),
    Route(
        "DELETE",
        "/api/me/subscriptions/{event_id}",
        unsubscribe,
        "Stop following an event; polling stops when nobody watches it",
        {204: Answer("No longer followed"), **MINE, **MEMBERS_ONLY},
    ),
    _acting(
        pause_subscription,
        "/api/me/subscriptions/{event_id}/pause",
        "Hear nothing of it, for you alone",
    ),
    _acting(resume_subscription, "/api/me/subscriptions/{event_id}/resume", "Hear of it again"),
    _acting(
        snooze_subscription,
        "/api/me/subscriptions/{event_id}/snooze",
        'Hold your messages about it until then; {"for": "0s"} ends a snooze',
        body=SnoozeInput,
        body_text="For how long, or until when.",
    ),
    Route(
        "GET",
        "/api/me/searches",
        list_searches,
        "Your own searches",
        {200: ok(SearchesOut), **MEMBERS_ONLY},
    ),
    Route(
        "POST",
        "/api/me/searches",
        add_search,
        "Follow an artist, a venue or a keyword: what it finds, you follow",
        {
            201: ok(SearchOut, "Added; it runs within a minute"),
            **BAD_BODY,
            404: Answer("Discovery knows no artist of that name.", Problem),
            409: Answer(
                "A search has this name, the limit is reached, or Discovery is off.", Problem
            ),
            **MEMBERS_ONLY,
        },
        body=SearchInput,
        body_text="An artist is looked up by name in Discovery; the other filters are those of "
        "`discover:`.",
    ),
    Route(
        "DELETE",
        "/api/me/searches/{name}",
        remove_search,
        "Remove a search; the shows it found stay until they start",
        {
            204: Answer("Removed"),
            404: Answer("You have no search of this name.", Problem),
            **MEMBERS_ONLY,
        },
    ),
)
