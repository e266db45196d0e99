"""The JSON API of accounts: `/api/me/...` for every user (their subscriptions, channels
and settings) and `/api/users` for admins.

A member's token opens `/api/me` alone (see `server.web`). Another user's subscription or
channel answers 404, as one that does not exist. The operator's token (`server.token`) is
an admin without an account: it manages users, and has no subscriptions of its own.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import available_timezones

from aiohttp import web
from pydantic import BaseModel, Field, Strict
from pydantic.json_schema import models_json_schema

from monitor.server import calendar
from monitor.server.api import json_response
from monitor.server.context import CONTEXT, PRINCIPAL
from monitor.server.writes import answers_problems, json_body
from monitor.store.accounts import Role, User
from monitor.store.subscriptions import UserSearch
from monitor.subscribing import (
    ChannelInput,
    SearchInput,
    Subscribing,
    SubscriptionInput,
    SubscriptionSettings,
    channel_document,
)
from monitor.times import iso
from monitor.users import MAX_PASSWORD, MIN_PASSWORD, USER_NAME, Principal, Users
from monitor.watching import (
    Forbidden,
    Invalid,
    NotFound,
    SnoozeInput,
    StrictInput,
    Unauthorized,
    shaped,
)

NO_ACCOUNT = (
    "the operator's token has no account of its own: create a user (inventory-monitor "
    "user add NAME) and use their token"
)


class QuietHoursInput(StrictInput):
    from_: Annotated[str, Strict(), Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = Field(
        alias="from"
    )
    to: Annotated[str, Strict(), Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class MeInput(StrictInput):
    """A user's own settings: messages wait out their quiet hours, in their time zone."""

    timezone: (
        Annotated[str, Strict(), Field(json_schema_extra={"enum": sorted(available_timezones())})]
        | None
    ) = None
    quiet_hours: QuietHoursInput | None = None


class UserInput(StrictInput):
    name: Annotated[str, Strict(), Field(pattern=USER_NAME)]
    role: Literal["admin", "member"] = "member"
    password: (
        Annotated[str, Strict(), Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)] | None
    ) = None


class MeOut(BaseModel):
    name: str
    role: str
    timezone: str | None = None
    quiet_hours: dict[str, str] | None = None


class ChannelOut(BaseModel):
    name: str
    type: str
    target: str
    """The URL's scheme and host: the rest may hold a token."""
    secret: str | None = None
    """A webhook's signing secret, in the answer that created it alone."""


class ChannelsOut(BaseModel):
    channels: list[ChannelOut]


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


class UserOut(BaseModel):
    name: str
    role: str
    disabled: bool


class UsersOut(BaseModel):
    users: list[UserOut]


class NewUserOut(UserOut):
    token: str
    """The user's API token: shown here once, stored only as a digest."""


class DeliveryOut(BaseModel):
    id: str
    channel: str
    event_id: str
    event_name: str | None
    state: str
    """dead (given up on), or pending (failing, to be retried)."""
    attempts: int
    next_attempt_at: str | None
    error: str | None


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut]


class CalendarOut(BaseModel):
    url: str
    """The feed's address, with its key: give it to a calendar app; shown once."""


class TestResult(BaseModel):
    delivered: bool
    answer: str | None = None
    """The receiver's answer, when it was delivered."""
    error: str | None = None
    """Why it was not: the receiver refused or did not answer."""


def _user(request: web.Request) -> User:
    """The signed-in user; 403 for the operator's token, which has no account."""
    principal: Principal | None = request.get(PRINCIPAL)
    if principal is None or principal.user is None:
        if principal is None:
            raise Unauthorized("a user's token is required (Authorization: Bearer ...)")
        raise Forbidden(NO_ACCOUNT)
    return principal.user


def _subscribing(request: web.Request) -> Subscribing:
    service = request.app[CONTEXT].subscribing
    if service is None:
        raise NotFound("accounts are not served here")
    return service


def _users(request: web.Request) -> Users:
    service = request.app[CONTEXT].users
    principal = request.get(PRINCIPAL)
    if service is None:
        raise NotFound("accounts are not served here")
    if principal is None or not principal.admin:
        raise Forbidden("only an admin manages users")
    return service


def _me(principal: Principal) -> dict[str, Any]:
    user = principal.user
    if user is None:
        return {"name": principal.name, "role": principal.role.value}
    return {
        "name": user.name,
        "role": user.role.value,
        "timezone": user.settings.get("timezone"),
        "quiet_hours": user.settings.get("quiet_hours"),
    }


@answers_problems
async def get_me(request: web.Request) -> web.Response:
    principal = request.get(PRINCIPAL)
    if principal is None:
        raise Unauthorized("a user's token is required (Authorization: Bearer ...)")
    return json_response(_me(principal))


@answers_problems
async def change_me(request: web.Request) -> web.Response:
    user = _user(request)
    body = await json_body(request)
    users = request.app[CONTEXT].users
    if users is None:
        raise NotFound("accounts are not served here")
    shaped(MeInput, body)
    updated = await users.update_settings(user, body)
    return json_response(_me(Principal(updated.name, updated.role, updated)))


@answers_problems
async def renew_calendar(request: web.Request) -> web.Response:
    """A new address for the user's calendar feed; the earlier one stops working."""
    user = _user(request)
    await json_body(request, required=False)
    users = request.app[CONTEXT].users
    if users is None:
        raise NotFound("accounts are not served here")
    key = await users.new_calendar_key(user)
    return json_response({"url": f"/api/me/calendar.ics?{urlencode({'key': key})}"})


@answers_problems
async def list_channels(request: web.Request) -> web.Response:
    channels = await _subscribing(request).channels(_user(request))
    return json_response({"channels": [channel_document(c) for c in channels]})


@answers_problems
async def add_channel(request: web.Request) -> web.Response:
    user = _user(request)
    channel = await _subscribing(request).add_channel(user, await json_body(request))
    response = json_response(channel_document(channel, secret=True), 201)
    response.headers["Location"] = f"/api/me/channels/{channel.name}"
    return response


@answers_problems
async def remove_channel(request: web.Request) -> web.Response:
    user = _user(request)
    await json_body(request, required=False)
    await _subscribing(request).remove_channel(user, request.match_info["name"])
    return web.Response(status=204)


@answers_problems
async def test_channel(request: web.Request) -> web.Response:
    user = _user(request)
    await json_body(request, required=False)
    delivered, said = await _subscribing(request).test_channel(user, request.match_info["name"])
    return json_response(
        {"delivered": True, "answer": said} if delivered else {"delivered": False, "error": said}
    )


@answers_problems
async def list_deliveries(request: web.Request) -> web.Response:
    """The user's deliveries that failed: dead ones, and those being retried."""
    troubled = await _subscribing(request).troubled(_user(request))
    return json_response(
        {
            "deliveries": [
                {
                    "id": item.id,
                    "channel": item.notifier.partition("/")[2],
                    "event_id": item.event_id,
                    "event_name": item.event_name,
                    "state": item.state,
                    "attempts": item.attempts,
                    "next_attempt_at": None if item.state == "dead" else iso(item.next_attempt_at),
                    "error": item.last_error,
                }
                for item in troubled
            ]
        }
    )


def search_document(search: UserSearch) -> dict[str, Any]:
    return {"name": search.name, **search.filters}


@answers_problems
async def list_searches(request: web.Request) -> web.Response:
    searches = await _subscribing(request).searches(_user(request))
    return json_response({"searches": [search_document(s) for s in searches]})


@answers_problems
async def add_search(request: web.Request) -> web.Response:
    user = _user(request)
    search = await _subscribing(request).add_search(user, await json_body(request))
    response = json_response(search_document(search), 201)
    response.headers["Location"] = f"/api/me/searches/{search.name}"
    return response


@answers_problems
async def remove_search(request: web.Request) -> web.Response:
    user = _user(request)
    await json_body(request, required=False)
    await _subscribing(request).remove_search(user, request.match_info["name"])
    return web.Response(status=204)


@answers_problems
async def list_subscriptions(request: web.Request) -> web.Response:
    views = await _subscribing(request).subscriptions(_user(request))
    return json_response({"subscriptions": [view.document() for view in views]})


@answers_problems
async def subscribe(request: web.Request) -> web.Response:
    user = _user(request)
    view = await _subscribing(request).subscribe(user, await json_body(request))
    response = json_response(view.document(), 201)
    response.headers["Location"] = f"/api/me/subscriptions/{view.subscription.event_id}"
    return response


def _event_id(request: web.Request) -> str:
    event_id = request.match_info["event_id"]
    if "\x00" in event_id:
        raise Invalid("must not contain a NUL character", field="event_id")
    return event_id


@answers_problems
async def get_subscription(request: web.Request) -> web.Response:
    view = await _subscribing(request).subscription(_user(request), _event_id(request))
    return json_response(view.document())


@answers_problems
async def change_subscription(request: web.Request) -> web.Response:
    user = _user(request)
    body = await json_body(request)
    view = await _subscribing(request).update(user, _event_id(request), body)
    return json_response(view.document())


@answers_problems
async def unsubscribe(request: web.Request) -> web.Response:
    user = _user(request)
    await json_body(request, required=False)
    await _subscribing(request).unsubscribe(user, _event_id(request))
    return web.Response(status=204)


@answers_problems
async def pause_subscription(request: web.Request) -> web.Response:
    return await _pause(request, paused=True)


@answers_problems
async def resume_subscription(request: web.Request) -> web.Response:
    return await _pause(request, paused=False)


async def _pause(request: web.Request, *, paused: bool) -> web.Response:
    user = _user(request)
    await json_body(request, required=False)
    view = await _subscribing(request).pause(user, _event_id(request), paused=paused)
    return json_response(view.document())


@answers_problems
async def snooze_subscription(request: web.Request) -> web.Response:
    user = _user(request)
    body = await json_body(request)
    view = await _subscribing(request).snooze(user, _event_id(request), body)
    return json_response(view.document())


@answers_problems
async def list_users(request: web.Request) -> web.Response:
    users = await _users(request).list()
    return json_response({"users": [_user_out(user) for user in users]})


@answers_problems
async def add_user(request: web.Request) -> web.Response:
    users = _users(request)
    body = await json_body(request)
    shaped(UserInput, body)
    given = UserInput.model_validate(body)
    user, token = await users.add(given.name, Role(given.role), given.password)
    response = json_response({**_user_out(user), "token": token}, 201)
    response.headers["Location"] = f"/api/users/{user.name}"
    return response


@answers_problems
async def remove_user(request: web.Request) -> web.Response:
    users = _users(request)
    await json_body(request, required=False)
    name = request.match_info["name"]
    await users.remove(name)
    return web.Response(status=204)


def _user_out(user: User) -> dict[str, Any]:
    return {"name": user.name, "role": user.role.value, "disabled": user.disabled}


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/me", get_me)
    router.add_patch("/api/me", change_me)
    router.add_post("/api/me/calendar", renew_calendar)
    router.add_get("/api/me/calendar.ics", calendar.calendar)
    router.add_get("/api/me/channels", list_channels)
    router.add_post("/api/me/channels", add_channel)
    router.add_delete("/api/me/channels/{name}", remove_channel)
    router.add_post("/api/me/channels/{name}/test", test_channel)
    router.add_get("/api/me/deliveries", list_deliveries)
    router.add_get("/api/me/subscriptions", list_subscriptions)
    router.add_post("/api/me/subscriptions", subscribe)
    router.add_get("/api/me/subscriptions/{event_id}", get_subscription)
    router.add_patch("/api/me/subscriptions/{event_id}", change_subscription)
    router.add_delete("/api/me/subscriptions/{event_id}", unsubscribe)
    router.add_post("/api/me/subscriptions/{event_id}/pause", pause_subscription)
    router.add_post("/api/me/subscriptions/{event_id}/resume", resume_subscription)
    router.add_post("/api/me/subscriptions/{event_id}/snooze", snooze_subscription)
    router.add_get("/api/me/searches", list_searches)
    router.add_post("/api/me/searches", add_search)
    router.add_delete("/api/me/searches/{name}", remove_search)
    router.add_get("/api/users", list_users)
    router.add_post("/api/users", add_user)
    router.add_delete("/api/users/{name}", remove_user)


def describe(document: dict[str, Any]) -> None:
    """Add the accounts' paths and schemas to the OpenAPI document."""
    _, schemas = models_json_schema(
        [
            *(
                (model, "serialization")
                for model in (
                    MeOut,
                    ChannelOut,
                    ChannelsOut,
                    SubscriptionOut,
                    SubscriptionsOut,
                    UserOut,
                    UsersOut,
                    NewUserOut,
                    TestResult,
                    DeliveriesOut,
                    CalendarOut,
                    SearchOut,
                    SearchesOut,
                )
            ),
            *(
                (model, "validation")
                for model in (
                    MeInput,
                    ChannelInput,
                    SubscriptionInput,
                    SubscriptionSettings,
                    SearchInput,
                    SnoozeInput,
                    UserInput,
                )
            ),
        ],
        ref_template="#/components/schemas/{model}",
    )
    document["components"]["schemas"].update(schemas["$defs"])
    document["paths"].update(_paths())


def _answer(model: str, description: str = "OK") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
    }


def _body(model: str, description: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}},
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _paths() -> dict[str, Any]:
    problem = "Problem"
    bad = {
        "400": _answer(problem, "Bad input; `field` names it."),
        "415": _answer(problem, "The body is not JSON."),
    }
    who = {
        "401": _answer(problem, "No valid token was given."),
        "403": _answer(problem, "The operator's token has no account: use a user's token."),
    }
    admin = {
        "401": _answer(problem, "No valid token was given."),
        "403": _answer(problem, "Only an admin manages users."),
    }
    mine = {"404": _answer(problem, "You do not follow this event.")}
    event_id = _path("event_id")

    def act(summary: str, **extra: Any) -> dict[str, Any]:
        answers = {"200": _answer("SubscriptionOut"), **mine, **who}
        if "requestBody" in extra:
            answers.update(bad)
        return {
            "post": {"summary": summary, "parameters": [event_id], **extra, "responses": answers}
        }

    return {
        "/api/me": {
            "get": {
                "summary": "Who the token is: a user's name and role",
                "responses": {"200": _answer("MeOut"), "401": who["401"]},
            },
            "patch": {
                "summary": "Your time zone and quiet hours (a null clears one)",
                "requestBody": _body("MeInput", "The settings to change."),
                "responses": {"200": _answer("MeOut"), **bad, **who},
            },
        },
        "/api/me/calendar": {
            "post": {
                "summary": "A new address for your calendar feed; the earlier one stops working",
                "responses": {"200": _answer("CalendarOut"), **who},
            }
        },
        "/api/me/calendar.ics": {
            "get": {
                "summary": "Your shows and their sale openings as an iCalendar feed",
                "security": [],
                "parameters": [
                    {
                        "name": "key",
                        "in": "query",
                        "required": True,
                        "description": "The feed's own key, from POST /api/me/calendar.",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {"description": "text/calendar"},
                    "404": _answer(problem, "No calendar has this key."),
                },
            }
        },
        "/api/me/channels": {
            "get": {
                "summary": "Your channels",
                "responses": {"200": _answer("ChannelsOut"), **who},
            },
            "post": {
                "summary": "Add a channel: an Apprise URL, or a signed webhook",
                "requestBody": _body(
                    "ChannelInput",
                    "A member's channel may not reach a loopback, private or link-local "
                    "address unless users.allow_private_targets is set.",
                ),
                "responses": {
                    "201": _answer("ChannelOut", "Added; a webhook's secret is shown this once"),
                    **bad,
                    "409": _answer(problem, "A channel has this name, or the limit is reached."),
                    **who,
                },
            },
        },
        "/api/me/channels/{name}": {
            "delete": {
                "summary": "Remove a channel; what waits for it is not sent",
                "parameters": [_path("name")],
                "responses": {
                    "204": {"description": "Removed"},
                    "404": _answer(problem, "You have no channel of this name."),
                    **who,
                },
            }
        },
        "/api/me/channels/{name}/test": {
            "post": {
                "summary": "Send a message marked as a test through the channel, and say "
                "whether it got through",
                "parameters": [_path("name")],
                "responses": {
                    "200": _answer("TestResult"),
                    "404": _answer(problem, "You have no channel of this name."),
                    **who,
                },
            }
        },
        "/api/me/deliveries": {
            "get": {
                "summary": "Your deliveries that failed: dead, or being retried",
                "responses": {"200": _answer("DeliveriesOut"), **who},
            }
        },
        "/api/me/subscriptions": {
            "get": {
                "summary": "The events you follow, with their statuses",
                "responses": {"200": _answer("SubscriptionsOut"), **who},
            },
            "post": {
                "summary": "Follow an event, by its ID or its link",
                "requestBody": _body("SubscriptionInput", "The event and how to hear of it."),
                "responses": {
                    "201": _answer("SubscriptionOut", "Followed"),
                    **bad,
                    "409": _answer(
                        problem,
                        "You follow it already, the limit is reached, or `notify` names a "
                        "channel you do not have.",
                    ),
                    **who,
                },
            },
        },
        "/api/me/subscriptions/{event_id}": {
            "get": {
                "summary": "One of your subscriptions",
                "parameters": [event_id],
                "responses": {"200": _answer("SubscriptionOut"), "400": bad["400"], **mine, **who},
            },
            "patch": {
                "summary": "Change a subscription (a null removes a setting)",
                "parameters": [event_id],
                "requestBody": _body("SubscriptionSettings", "The settings to change."),
                "responses": {
                    "200": _answer("SubscriptionOut"),
                    **bad,
                    **mine,
                    "409": _answer(problem, "`notify` names a channel you do not have."),
                    **who,
                },
            },
            "delete": {
                "summary": "Stop following an event; polling stops when nobody watches it",
                "parameters": [event_id],
                "responses": {"204": {"description": "No longer followed"}, **mine, **who},
            },
        },
        "/api/me/subscriptions/{event_id}/pause": act("Hear nothing of it, for you alone"),
        "/api/me/subscriptions/{event_id}/resume": act("Hear of it again"),
        "/api/me/subscriptions/{event_id}/snooze": act(
            'Hold your messages about it until then; {"for": "0s"} ends a snooze',
            requestBody=_body("SnoozeInput", "For how long, or until when."),
        ),
        "/api/me/searches": {
            "get": {
                "summary": "Your own searches",
                "responses": {"200": _answer("SearchesOut"), **who},
            },
            "post": {
                "summary": "Follow an artist, a venue or a keyword: what it finds, you follow",
                "requestBody": _body(
                    "SearchInput",
                    "An artist is looked up by name in Discovery; the other filters are "
                    "those of `discover:`.",
                ),
                "responses": {
                    "201": _answer("SearchOut", "Added; it runs within a minute"),
                    **bad,
                    "404": _answer(problem, "Discovery knows no artist of that name."),
                    "409": _answer(
                        problem,
                        "A search has this name, the limit is reached, or Discovery is off.",
                    ),
                    **who,
                },
            },
        },
        "/api/me/searches/{name}": {
            "delete": {
                "summary": "Remove a search; the shows it found stay until they start",
                "parameters": [_path("name")],
                "responses": {
                    "204": {"description": "Removed"},
                    "404": _answer(problem, "You have no search of this name."),
                    **who,
                },
            }
        },
        "/api/users": {
            "get": {
                "summary": "Every user (admins only)",
                "responses": {"200": _answer("UsersOut"), **admin},
            },
            "post": {
                "summary": "Create a user; the answer holds their token, shown once",
                "requestBody": _body("UserInput", "The user's name, role and password."),
                "responses": {
                    "201": _answer("NewUserOut", "Created"),
                    **bad,
                    "409": _answer(problem, "A user has this name."),
                    **admin,
                },
            },
        },
        "/api/users/{name}": {
            "delete": {
                "summary": "Remove a user with their subscriptions and channels",
                "parameters": [_path("name")],
                "responses": {
                    "204": {"description": "Removed"},
                    "404": _answer(problem, "No user has this name."),
                    **admin,
                },
            }
        },
    }
