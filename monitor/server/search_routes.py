"""`/api/searches`: the searches that add watches, the configuration file's and those the
operator follows at runtime (an artist by name, or any filters of `discover:`)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel

from monitor.following import Following, FollowInput
from monitor.server.account_routes import NO_TOKEN
from monitor.server.api import BAD_BODY, WRITES_REFUSED, Problem, json_response
from monitor.server.context import CONTEXT
from monitor.server.routes import Answer, Route, ok
from monitor.server.subscription_routes import SearchOut
from monitor.server.writes import answers_problems, json_body, service, who_of


class FollowedSearchOut(SearchOut):
    """A search that adds watches: what a member's search says, and more."""

    origin: str
    """config (declared in the config file) or api (followed at runtime)."""
    every: str | None = None
    notify: list[str] | None = None
    last_run_at: str | None = None
    found: int | None = None
    """How many events its last run matched."""


class FollowedSearchesOut(BaseModel):
    searches: list[FollowedSearchOut]


def _following(request: web.Request) -> Following:
    context = request.app[CONTEXT]
    service(context)  # writes need the token
    if context.following is None:
        raise web.HTTPNotFound()
    return context.following


@answers_problems
async def list_searches(request: web.Request) -> web.Response:
    following = request.app[CONTEXT].following
    searches = [] if following is None else await following.searches()
    return json_response({"searches": searches})


@answers_problems
async def follow(request: web.Request) -> web.Response:
    following = _following(request)
    search = await following.follow(await json_body(request), who_of(request))
    response = json_response(search, 201)
    response.headers["Location"] = f"/api/searches/{search['name']}"
    return response


@answers_problems
async def unfollow(request: web.Request) -> web.Response:
    following = _following(request)
    await json_body(request, required=False)
    await following.unfollow(request.match_info["name"], who_of(request))
    return web.Response(status=204)


def routes(notifiers: tuple[str, ...] = ()) -> tuple[Route, ...]:
    """The routes; `notify` takes the configured `notifiers` alone."""
    return (
        Route(
            "GET",
            "/api/searches",
            list_searches,
            "The searches that add watches: the config file's and those followed here",
            {200: ok(FollowedSearchesOut), 401: NO_TOKEN},
        ),
        Route(
            "POST",
            "/api/searches",
            follow,
            "Follow an artist, a venue or a keyword: what it finds is watched, each event "
            "until it starts",
            {
                201: ok(FollowedSearchOut, "Followed; it runs within a minute"),
                **BAD_BODY,
                404: Answer("Discovery knows no artist of that name.", Problem),
                409: Answer("A search has this name, or Discovery is off.", Problem),
                **WRITES_REFUSED,
            },
            body=FollowInput,
            body_text="An artist is looked up by name in Discovery; the other filters are "
            "those of `discover:`.",
            enums={"notify": notifiers},
        ),
        Route(
            "DELETE",
            "/api/searches/{name}",
            unfollow,
            "Stop a search; what it found stays until it starts",
            {
                204: Answer("Stopped"),
                404: Answer("No search of this name is followed.", Problem),
                409: Answer("The config file declares it.", Problem),
                **WRITES_REFUSED,
            },
        ),
    )
