"""The daemon's HTTP server: health, readiness, metrics, the JSON API and the dashboard.

Everything but /healthz sits behind the bearer token when one is configured. A browser
signs in once with `/?token=...`, which sets an HttpOnly cookie holding a session value
derived from the token (never the token itself) and drops the token from the address bar.
That cookie opens the dashboard's pages and forms only, never the JSON API: a browser sends
it with requests that other sites' pages make, and only the forms carry a CSRF value.
Whatever authenticates it, a write that a browser says comes from another site is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from aiohttp import web

from monitor import __version__
from monitor.errors import MonitorError
from monitor.server import (
    account_routes,
    api,
    dashboard,
    event_page,
    forms,
    member,
    probes,
    search_routes,
    signin,
    subscription_routes,
    user_routes,
    watch_routes,
)
from monitor.server.context import CONTEXT, NONCE, PRINCIPAL, Context
from monitor.server.routes import Route, install
from monitor.server.routes import openapi as openapi_of
from monitor.server.signin import session_of
from monitor.store.accounts import Role
from monitor.users import OPERATOR, Principal

logger = logging.getLogger(__name__)

OPERATOR_COOKIE = "monitor_session"
IDLE_TIMEOUT = 15.0
"""Seconds a connection may sit idle or half-way through sending a request."""
_OPEN_PATHS = frozenset({"/healthz", "/signin", "/signout", "/api/me/calendar.ics"})
"""Open to anyone: the calendar feed checks its own key."""
_HTML_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON errors under /api and for the probes; never a traceback for the client."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or not request.path.startswith("/api/"):
            raise
        response = api.json_response({"error": exc.reason}, exc.status)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return api.json_response({"error": "internal error; the daemon's log has details"}, 500)


@web.middleware
async def _same_site(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuses a write that the browser marks as sent from another site's page: a form post
    or a script's request, which brings the session cookie and any credentials it holds."""
    if request.method not in _SAFE_METHODS and _foreign(request):
        message = "a write from another site's page is refused"
        if request.path.startswith("/api/"):
            return api.json_response({"error": message}, 403)
        raise web.HTTPForbidden(text=message)
    return await handler(request)


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _foreign(request: web.Request) -> bool:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:  # every current browser sends it; it is the surest sign
        return site not in ("same-origin", "none")  # "same-site": another port, a subdomain
    origin = request.headers.get("Origin")
    if origin is None:
        return False  # not a browser's cross-origin request (curl, the CLI)
    # "null" is what an older browser sends under our no-referrer policy, or from a
    # sandboxed frame: never proof of our own page. Behind a TLS proxy the scheme differs
    # from ours; the host and port the browser used arrive in Host either way.
    return origin == "null" or origin.partition("://")[2] != request.host


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Who the request acts as: the operator (`server.token`, as a bearer token or the
    dashboard's cookie), or a user (their own bearer token, or their signed-in session in
    a browser). A member reaches their own pages and `/api/me` alone. Without
    `server.token`, a request of nobody in particular reads as before."""
    if request.path in _OPEN_PATHS:
        return await handler(request)
    principal = await _principal(request)
    if principal is not None:
        request[PRINCIPAL] = principal
        if principal.role is Role.MEMBER and not _for_members(request.path):
            if not request.path.startswith("/api/"):
                raise web.HTTPForbidden(text="a member sees their own shows alone: go to /")
            return api.json_response(
                {"error": "a member's token opens /api/me alone", "field": None}, 403
            )
        return await handler(request)
    if request.app[CONTEXT].config.server.token is None:
        return await handler(request)
    if request.method == "GET" and request.match_info.handler in _PAGES:
        raise web.HTTPSeeOther("/signin")  # a person at a browser: never a JSON error
    return api.json_response(
        {"error": "a bearer token is required (Authorization: Bearer ...; browsers: /signin)"},
        401,
    )


async def _principal(request: web.Request) -> Principal | None:
    """Who the request acts as: by its bearer token (the operator's or a user's), by a
    signed-in browser's session, or by the operator's cookie; None for nobody."""
    context = request.app[CONTEXT]
    token = context.config.server.token
    secret = None if token is None else token.get_secret_value()
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        by_token = await _bearer(context, header[7:], secret)
        if by_token is not None:
            return by_token
    if secret is not None:
        _sign_in_by_link(request, secret)
    if request.match_info.handler not in _BROWSER_HANDLERS:
        return None
    return await _browser(request, secret)


async def _bearer(context: Context, bearer: str, secret: str | None) -> Principal | None:
    if secret is not None and _same(bearer, secret):
        return OPERATOR
    user = None if context.users is None else await context.users.authenticate(bearer)
    return None if user is None else Principal(user.name, user.role, user)


def _sign_in_by_link(request: web.Request, secret: str) -> None:
    """The dashboard opened as `/?token=...`: the operator's cookie is set, and the link
    is left for one that holds no secret."""
    offered = request.query.get("token")
    if offered is None or request.path != "/" or not _same(offered, secret):
        return
    response = web.HTTPSeeOther("/")
    response.set_cookie(
        OPERATOR_COOKIE,
        session_value(secret),
        httponly=True,
        samesite="Strict",
        secure=request.secure or request.app[CONTEXT].config.server.secure_cookies,
    )
    raise response


async def _browser(request: web.Request, secret: str | None) -> Principal | None:
    """A page's reader: a user by their session, or the operator by their cookie."""
    users = request.app[CONTEXT].users
    session = None if users is None else session_of(request)
    if session is not None and users is not None:
        user = await users.session_user(session)
        if user is not None:
            return Principal(user.name, user.role, user)
    cookie = _cookie(request)
    if cookie is not None and secret is not None and _same(cookie, session_value(secret)):
        return OPERATOR
    return None


def _for_members(path: str) -> bool:
    return path in ("/", "/api/me", "/api/openapi.json") or path.startswith(("/api/me/", "/me/"))


async def home(request: web.Request) -> web.Response:
    """A member's own page, or the whole dashboard for an admin and the operator."""
    principal = request.get(PRINCIPAL)
    if principal is not None and principal.role is Role.MEMBER:
        return await member.page(request)
    return await dashboard.page(request)


_PAGES: frozenset[object] = frozenset({home, event_page.event_page})
_BROWSER_HANDLERS: frozenset[object] = frozenset(
    {*_PAGES, dashboard.add, *forms.HANDLERS, *member.HANDLERS}
)
"""What the session cookies open: the dashboard's pages, and its forms (each with its CSRF
value)."""


def session_value(secret: str) -> str:
    """What the browser's cookie holds: derived from the token, so a new token ends every
    session, yet the token itself is never stored in a browser."""
    return hmac.new(secret.encode(), b"inventory-monitor session", hashlib.sha256).hexdigest()


def _cookie(request: web.Request) -> str | None:
    try:
        return request.cookies.get(OPERATOR_COOKIE)
    except (ValueError, UnicodeError):  # a cookie header that does not parse carries none
        return None


async def _html_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Pages may run only their own script and style, and never inside another site's frame."""
    if response.content_type != "text/html":
        return
    nonce = request.get(NONCE, "")
    response.headers.update(_HTML_HEADERS)
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "style-src-attr 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


@web.middleware
async def _nonce(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[NONCE] = secrets.token_urlsafe(16)
    return await handler(request)


def _same(offered: str, secret: str) -> bool:
    # Header bytes that are not UTF-8 arrive as surrogates: they match no secret.
    return hmac.compare_digest(
        offered.encode("utf-8", "surrogateescape"), secret.encode("utf-8", "surrogateescape")
    )


async def openapi(request: web.Request) -> web.Response:
    notifiers = tuple(sorted(request.app[CONTEXT].config.notifiers))
    return web.Response(body=_openapi(notifiers), content_type="application/json")


@functools.lru_cache(maxsize=4)
def _openapi(notifiers: tuple[str, ...]) -> bytes:
    """The document names the configured notifiers: `notify` takes those alone."""
    document = openapi_of(api_routes(notifiers), title="inventory-monitor", version=__version__)
    return orjson.dumps(document)


def api_routes(notifiers: tuple[str, ...] = ()) -> tuple[Route, ...]:
    """Every route of the JSON API, with the probes; `notify` fields take `notifiers`."""
    return (
        *api.ROUTES,
        *watch_routes.routes(notifiers),
        *account_routes.ROUTES,
        *subscription_routes.ROUTES,
        *user_routes.ROUTES,
        *search_routes.routes(notifiers),
        *probes.ROUTES,
    )


def build_app(context: Context) -> web.Application:
    app = web.Application(middlewares=[_errors, _nonce, _same_site, _auth])
    app[CONTEXT] = context
    app.on_response_prepare.append(_html_headers)
    app.router.add_get("/api/openapi.json", openapi)
    install(app.router, api_routes())
    app.router.add_get("/", home)
    app.router.add_get("/events/{event_id}", event_page.event_page)
    app.router.add_post("/watches", dashboard.add)
    forms.add_routes(app.router)
    member.add_routes(app.router)
    signin.add_routes(app, context.clock)
    return app


@contextlib.asynccontextmanager
async def serve(context: Context, idle_timeout: float = IDLE_TIMEOUT) -> AsyncIterator[str]:
    """Serve on the configured host and port; yields the base URL."""
    settings = context.config.server
    runner = web.AppRunner(
        build_app(context),
        access_log=None,
        shutdown_timeout=1.0,
        keepalive_timeout=idle_timeout,
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        try:
            await site.start()
        except OSError as exc:
            raise MonitorError(
                f"the HTTP server cannot listen on {settings.host}:{settings.port}: "
                f"{exc.strerror or exc} (see server.host and server.port)"
            ) from None
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}"
        logger.info("serving the dashboard and API on %s", url)
        yield url
    finally:
        await runner.cleanup()
