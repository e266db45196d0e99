"""Signing in to the dashboard with a name and a password, and out again.

A session is a long random value in an HttpOnly, `SameSite=Strict` cookie (and `Secure`
with `server.secure_cookies`), stored as its digest, so that it ends at once on sign-out,
on a new password, or when the user is disabled or removed, on every replica.

Guessing is slowed per name and per client address alike: after five failures within a
minute, the answer is "too many attempts, try again in N s" until the oldest of them is a
minute old. A wrong name takes as long to refuse as a wrong password.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import deque
from collections.abc import Callable, Iterable

from aiohttp import web

from monitor.server.context import CONTEXT
from monitor.server.pages import render
from monitor.server.writes import MAX_BODY

USER_COOKIE = "monitor_user"
SESSION_DAYS = 30
ATTEMPTS = 5
WINDOW = 60.0
TRACKED = 10_000
"""Names and addresses whose failures are remembered at most: a flood of made-up names
costs bounded memory (the oldest are forgotten first)."""


class Attempts:
    """Failed sign-ins by name and by client address, within the last minute."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def wait(self, keys: Iterable[str]) -> float:
        """Seconds until another attempt is let through; 0 now."""
        now = self._clock()
        longest = 0.0
        for key in keys:
            failures = self._recent(key, now)
            if len(failures) >= ATTEMPTS:
                longest = max(longest, failures[0] + WINDOW - now)
        return longest

    def failed(self, keys: Iterable[str]) -> None:
        now = self._clock()
        for key in keys:
            self._recent(key, now).append(now)
            if len(self._failures) > TRACKED:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - WINDOW:
            failures.popleft()
        return failures


ATTEMPTS_KEY = web.AppKey("attempts", Attempts)


def form_value(session: str) -> str:
    """The CSRF value a signed-in user's forms carry: derived from their session, never
    the session itself."""
    return hmac.new(session.encode(), b"inventory-monitor form", hashlib.sha256).hexdigest()


def session_of(request: web.Request) -> str | None:
    try:
        return request.cookies.get(USER_COOKIE)
    except (ValueError, UnicodeError):
        return None


async def page(request: web.Request) -> web.Response:
    return _page(request)


def _page(
    request: web.Request, error: str | None = None, name: str = "", status: int = 200
) -> web.Response:
    operator = request.app[CONTEXT].config.server.token is not None
    return render(
        request, "signin.html", {"error": error, "name": name, "operator": operator}, status
    )


async def sign_in(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    if context.users is None:
        raise web.HTTPNotFound(text="accounts are not served here")
    if (request.content_length or 0) > MAX_BODY:
        return _page(request, "the form is too large", status=400)
    form = await request.post()
    name = str(form.get("name", "")).strip().lower()
    password = str(form.get("password", ""))
    keys = (f"name:{name}", f"address:{request.remote}")
    attempts = request.app[ATTEMPTS_KEY]
    wait = attempts.wait(keys)
    if wait > 0:
        return _page(request, f"too many attempts, try again in {wait:.0f} s", name, status=429)
    user = await context.users.sign_in(name, password)
    if user is None:
        attempts.failed(keys)
        return _page(request, "that name and password do not match", name, status=401)
    attempts.succeeded(keys)
    session = await context.users.start_session(user, SESSION_DAYS * 86400.0)
    response = web.HTTPSeeOther("/")
    response.set_cookie(
        USER_COOKIE,
        session,
        max_age=SESSION_DAYS * 86400,
        httponly=True,
        samesite="Strict",
        secure=request.secure or context.config.server.secure_cookies,
        path="/",
    )
    raise response


async def sign_out(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    session = session_of(request)
    if session is not None and context.users is not None:
        await context.users.end_session(session)
    response = web.HTTPSeeOther("/signin")
    response.del_cookie(USER_COOKIE, path="/")
    raise response


def add_routes(app: web.Application, clock: Callable[[], float]) -> None:
    app[ATTEMPTS_KEY] = Attempts(clock)
    app.router.add_get("/signin", page)
    app.router.add_post("/signin", sign_in)
    app.router.add_post("/signout", sign_out)
