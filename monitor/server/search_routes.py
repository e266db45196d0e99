"""`/api/searches`: the searches that add watches, the configuration file's and those the
operator follows at runtime (an artist by name, or any filters of `discover:`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from monitor.following import Following, FollowInput
from monitor.server.account_routes import SearchOut
from monitor.server.api import json_response
from monitor.server.context import CONTEXT
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


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/searches", list_searches)
    router.add_post("/api/searches", follow)
    router.add_delete("/api/searches/{name}", unfollow)


def describe(document: dict[str, Any], notifiers: Sequence[str]) -> None:
    """Add the searches' paths and schemas to the OpenAPI document; `notify` takes the
    configured `notifiers` alone."""
    _, schemas = models_json_schema(
        [
            (FollowedSearchOut, "serialization"),
            (FollowedSearchesOut, "serialization"),
            (FollowInput, "validation"),
        ],
        ref_template="#/components/schemas/{model}",
    )
    notify = schemas["$defs"]["FollowInput"]["properties"]["notify"]["anyOf"][0]
    notify["items"]["enum"] = list(notifiers)
    document["components"]["schemas"].update(schemas["$defs"])
    problem = {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    }

    def answer(model: str, description: str = "OK") -> dict[str, Any]:
        schema = {"$ref": f"#/components/schemas/{model}"}
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    refused = {
        "401": {"description": "No valid token was given.", **problem},
        "403": {"description": "Writes are off: `server.token` is not set.", **problem},
    }
    document["paths"].update(
        {
            "/api/searches": {
                "get": {
                    "summary": "The searches that add watches: the config file's and those "
                    "followed here",
                    "responses": {"200": answer("FollowedSearchesOut"), "401": refused["401"]},
                },
                "post": {
                    "summary": "Follow an artist, a venue or a keyword: what it finds is "
                    "watched, each event until it starts",
                    "requestBody": {
                        "required": True,
                        "description": "An artist is looked up by name in Discovery; the "
                        "other filters are those of `discover:`.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/FollowInput"}
                            }
                        },
                    },
                    "responses": {
                        "201": answer("FollowedSearchOut", "Followed; it runs within a minute"),
                        "400": {"description": "Bad input; `field` names it.", **problem},
                        "404": {
                            "description": "Discovery knows no artist of that name.",
                            **problem,
                        },
                        "409": {
                            "description": "A search has this name, or Discovery is off.",
                            **problem,
                        },
                        "415": {"description": "The body is not JSON.", **problem},
                        **refused,
                    },
                },
            },
            "/api/searches/{name}": {
                "delete": {
                    "summary": "Stop a search; what it found stays until it starts",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "204": {"description": "Stopped"},
                        "404": {"description": "No search of this name is followed.", **problem},
                        "409": {"description": "The config file declares it.", **problem},
                        **refused,
                    },
                }
            },
        }
    )
