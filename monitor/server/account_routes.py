"""The JSON API of accounts: `/api/me/...` for every user (their subscriptions, channels
and settings) and `/api/users` for admins.

A member's token opens `/api/me` alone (see `server.web`). Another user's subscription or
channel answers 404, as one that does not exist. The operator's token (`server.token`) is
an admin without an account: it manages users, and has no subscriptions of its own.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import available_timezones

from aiohttp import web
from pydantic import BaseModel, Field, Strict

from monitor.errors import Forbidden, NotFound, Unauthorized
from monitor.inputs import ChannelInput, StrictInput, shaped
from monitor.notify.channels import channel_document
from monitor.server import calendar
from monitor.server.api import BAD_BODY, Problem, json_response
from monitor.server.context import CONTEXT, PRINCIPAL
from monitor.server.routes import Answer, Query, Route, ok
from monitor.server.writes import answers_problems, json_body
from monitor.store.accounts import User
from monitor.subscribing import Subscribing
from monitor.times import iso
from monitor.users import Principal

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


def signed_in(request: web.Request) -> User:
    """The signed-in user; 403 for the operator's token, which has no account."""
    principal: Principal | None = request.get(PRINCIPAL)
    if principal is None or principal.user is None:
        if principal is None:
            raise Unauthorized("a user's token is required (Authorization: Bearer ...)")
        raise Forbidden(NO_ACCOUNT)
    return principal.user


def subscribing_of(request: web.Request) -> Subscribing:
    service = request.app[CONTEXT].subscribing
    if service is None:
        raise NotFound("accounts are not served here")
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
    user = signed_in(request)
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
    user = signed_in(request)
    await json_body(request, required=False)
    users = request.app[CONTEXT].users
    if users is None:
        raise NotFound("accounts are not served here")
    key = await users.new_calendar_key(user)
    return json_response({"url": f"/api/me/calendar.ics?{urlencode({'key': key})}"})


@answers_problems
async def list_channels(request: web.Request) -> web.Response:
    channels = await subscribing_of(request).channels(signed_in(request))
    return json_response({"channels": [channel_document(c) for c in channels]})


@answers_problems
async def add_channel(request: web.Request) -> web.Response:
    user = signed_in(request)
    channel = await subscribing_of(request).add_channel(user, await json_body(request))
    response = json_response(channel_document(channel, secret=True), 201)
    response.headers["Location"] = f"/api/me/channels/{channel.name}"
    return response


@answers_problems
async def remove_channel(request: web.Request) -> web.Response:
    user = signed_in(request)
    await json_body(request, required=False)
    await subscribing_of(request).remove_channel(user, request.match_info["name"])
    return web.Response(status=204)


@answers_problems
async def test_channel(request: web.Request) -> web.Response:
    user = signed_in(request)
    await json_body(request, required=False)
    delivered, said = await subscribing_of(request).test_channel(user, request.match_info["name"])
    return json_response(
        {"delivered": True, "answer": said} if delivered else {"delivered": False, "error": said}
    )


@answers_problems
async def list_deliveries(request: web.Request) -> web.Response:
    """The user's deliveries that failed: dead ones, and those being retried."""
    troubled = await subscribing_of(request).troubled(signed_in(request))
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


NO_TOKEN = Answer("No valid token was given.", Problem)
MEMBERS_ONLY = {
    401: NO_TOKEN,
    403: Answer("The operator's token has no account: use a user's token.", Problem),
}
NO_CHANNEL = Answer("You have no channel of this name.", Problem)

ROUTES = (
    Route(
        "GET",
        "/api/me",
        get_me,
        "Who the token is: a user's name and role",
        {200: ok(MeOut), 401: NO_TOKEN},
    ),
    Route(
        "PATCH",
        "/api/me",
        change_me,
        "Your time zone and quiet hours (a null clears one)",
        {200: ok(MeOut), **BAD_BODY, **MEMBERS_ONLY},
        body=MeInput,
        body_text="The settings to change.",
    ),
    Route(
        "POST",
        "/api/me/calendar",
        renew_calendar,
        "A new address for your calendar feed; the earlier one stops working",
        {200: ok(CalendarOut), **MEMBERS_ONLY},
    ),
    Route(
        "GET",
        "/api/me/calendar.ics",
        calendar.calendar,
        "Your shows and their sale openings as an iCalendar feed",
        {200: Answer("text/calendar"), 404: Answer("No calendar has this key.", Problem)},
        query=(
            Query(
                "key",
                "The feed's own key, from POST /api/me/calendar.",
                {"type": "string"},
                required=True,
            ),
        ),
        public=True,
    ),
    Route(
        "GET",
        "/api/me/channels",
        list_channels,
        "Your channels",
        {200: ok(ChannelsOut), **MEMBERS_ONLY},
    ),
    Route(
        "POST",
        "/api/me/channels",
        add_channel,
        "Add a channel: an Apprise URL, or a signed webhook",
        {
            201: ok(ChannelOut, "Added; a webhook's secret is shown this once"),
            **BAD_BODY,
            409: Answer("A channel has this name, or the limit is reached.", Problem),
            **MEMBERS_ONLY,
        },
        body=ChannelInput,
        body_text="A member's channel may not reach a loopback, private or link-local address "
        "unless users.allow_private_targets is set.",
    ),
    Route(
        "DELETE",
        "/api/me/channels/{name}",
        remove_channel,
        "Remove a channel; what waits for it is not sent",
        {204: Answer("Removed"), 404: NO_CHANNEL, **MEMBERS_ONLY},
    ),
    Route(
        "POST",
        "/api/me/channels/{name}/test",
        test_channel,
        "Send a message marked as a test through the channel, and say whether it got through",
        {200: ok(TestResult), 404: NO_CHANNEL, **MEMBERS_ONLY},
    ),
    Route(
        "GET",
        "/api/me/deliveries",
        list_deliveries,
        "Your deliveries that failed: dead, or being retried",
        {200: ok(DeliveriesOut), **MEMBERS_ONLY},
    ),
)
