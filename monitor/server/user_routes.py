"""The JSON API of users, for admins: `/api/users`. The operator's token (`server.token`)
is an admin without an account: it manages users, and has no subscriptions of its own."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field, Strict

from monitor.errors import Forbidden, NotFound
from monitor.inputs import StrictInput, shaped
from monitor.server.account_routes import NO_TOKEN
from monitor.server.api import BAD_BODY, Problem, json_response
from monitor.server.context import CONTEXT, PRINCIPAL
from monitor.server.routes import Answer, Route, ok
from monitor.server.writes import answers_problems, json_body
from monitor.store.accounts import Role, User
from monitor.users import MAX_PASSWORD, MIN_PASSWORD, USER_NAME, Users


class UserInput(StrictInput):
    name: Annotated[str, Strict(), Field(pattern=USER_NAME)]
    role: Literal["admin", "member"] = "member"
    password: (
        Annotated[str, Strict(), Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)] | None
    ) = None


class UserOut(BaseModel):
    name: str
    role: str
    disabled: bool


class UsersOut(BaseModel):
    users: list[UserOut]


class NewUserOut(UserOut):
    token: str
    """The user's API token: shown here once, stored only as a digest."""


def _users(request: web.Request) -> Users:
    service = request.app[CONTEXT].users
    principal = request.get(PRINCIPAL)
    if service is None:
        raise NotFound("accounts are not served here")
    if principal is None or not principal.admin:
        raise Forbidden("only an admin manages users")
    return service


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


ADMIN = {401: NO_TOKEN, 403: Answer("Only an admin manages users.", Problem)}

ROUTES = (
    Route(
        "GET", "/api/users", list_users, "Every user (admins only)", {200: ok(UsersOut), **ADMIN}
    ),
    Route(
        "POST",
        "/api/users",
        add_user,
        "Create a user; the answer holds their token, shown once",
        {
            201: ok(NewUserOut, "Created"),
            **BAD_BODY,
            409: Answer("A user has this name.", Problem),
            **ADMIN,
        },
        body=UserInput,
        body_text="The user's name, role and password.",
    ),
    Route(
        "DELETE",
        "/api/users/{name}",
        remove_user,
        "Remove a user with their subscriptions and channels",
        {204: Answer("Removed"), 404: Answer("No user has this name.", Problem), **ADMIN},
    ),
)
