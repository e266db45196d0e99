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
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor import __version__
from monitor.errors import MonitorError
from monitor.models import Health
from monitor.readiness import readiness
from monitor.server import (
    account_routes,
    api,
    dashboard,
    forms,
    member,
    search_routes,
    signin,
    subscription_routes,
    user_routes,
    watch_routes,
)
from monitor.server.context import CONTEXT, NONCE, PRINCIPAL, Context
from monitor.server.routes import Answer, Route, install, ok
from monitor.server.routes import openapi as openapi_of
from monitor.server.signin import session_of
from monitor.store.accounts import Role
from monitor.users import OPERATOR, Principal

logger = logging.getLogger(__name__)

SESSION_COOKIE = "monitor_session"
DATABASE_TIMEOUT = 2.0
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
    context = request.app[CONTEXT]
    token = context.config.server.token
    secret = None if token is None else token.get_secret_value()
    header = request.headers.get("Authorization", "")
    bearer = header[7:] if header.lower().startswith("bearer ") else None
    if bearer is not None and secret is not None and _same(bearer, secret):
        return OPERATOR
    if bearer is not None and context.users is not None:
        user = await context.users.authenticate(bearer)
        if user is not None:
            return Principal(user.name, user.role, user)
    offered = request.query.get("token")
    if (
        offered is not None
        and secret is not None
        and request.path == "/"
        and _same(offered, secret)
    ):
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            SESSION_COOKIE,
            session_value(secret),
            httponly=True,
            samesite="Strict",
            secure=request.secure or context.config.server.secure_cookies,
        )
        raise response
    browser = request.match_info.handler in _BROWSER_HANDLERS
    session = session_of(request) if browser and context.users is not None else None
    if session is not None and context.users is not None:
        user = await context.users.session_user(session)
        if user is not None:
            return Principal(user.name, user.role, user)
    cookie = _cookie(request) if browser else None
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


_PAGES: frozenset[object] = frozenset({home, dashboard.event_page})
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
        return request.cookies.get(SESSION_COOKIE)
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


async def healthz(request: web.Request) -> web.Response:
    if not request.app[CONTEXT].polling():
        return api.json_response({"status": "not polling"}, 503)
    return api.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    shortest = None
    try:
        shortest = await asyncio.wait_for(context.reads.shortest_interval(), DATABASE_TIMEOUT)
    except Exception:  # whatever the driver raises, the database is not usable
        database_ok = False
    else:
        database_ok = True
    status = context.upstream.status
    reasons = readiness(
        now=context.clock(),
        started_at=context.started_at,
        last_success_at=status.last_success_at,
        shortest_interval=shortest or context.config.shortest_interval(),
        health=status.health,
        database_ok=database_ok,
        watching=bool(context.config.events),
        storage_failures=context.storage_failures(),
        unready_after=context.config.server.unready_after,
    )
    if not context.polling():
        reasons.append("scheduler_stalled")
    return api.json_response(
        {
            "status": "not_ready" if reasons else "ready",
            "reasons": reasons,
            "last_successful_poll_at": api.when(status.last_success_at),
        },
        503 if reasons else 200,
    )


async def metrics(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    figures = context.metrics
    outbox = await context.reads.outbox_stats()
    now = context.clock()
    figures.outbox_pending.set(outbox.pending)
    oldest = outbox.oldest_created_at
    figures.outbox_oldest_seconds.set(0 if oldest is None else max(0.0, now - oldest))
    figures.watched.set(await context.reads.watched_count())
    status = context.upstream.status
    figures.last_success.set(status.last_success_at or 0)
    available = status.quota.available
    figures.quota_remaining.set(-1 if available is None else available)
    for health in Health:
        figures.upstream_health.labels(health.value).set(int(health is status.health))
    return web.Response(
        body=generate_latest(figures.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
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
        Route(
            "GET",
            "/healthz",
            healthz,
            "Liveness",
            {200: Answer("Alive"), 503: Answer("The poll scheduler is not running")},
            public=True,
        ),
        Route(
            "GET",
            "/readyz",
            readyz,
            "Readiness: the database answers and polls succeed",
            {
                200: ok(api.Readiness, "Ready"),
                503: ok(api.Readiness, "Not ready; `reasons` says why"),
                401: api.UNAUTHORIZED,
            },
        ),
        Route(
            "GET",
            "/metrics",
            metrics,
            "Prometheus metrics",
            {200: Answer("Text format"), 401: api.UNAUTHORIZED},
        ),
    )


def build_app(context: Context) -> web.Application:
    app = web.Application(middlewares=[_errors, _nonce, _same_site, _auth])
    app[CONTEXT] = context
    app.on_response_prepare.append(_html_headers)
    app.router.add_get("/api/openapi.json", openapi)
    install(app.router, api_routes())
    app.router.add_get("/", home)
    app.router.add_get("/events/{event_id}", dashboard.event_page)
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
