"""The HTTP server against hostile or careless clients: headers on pages, half-sent
requests, wrong methods."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import aiohttp
import pytest
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.app import Monitor
from monitor.devtools.simulator import Simulator
from monitor.logs import MalformedRequestFilter
from monitor.polling.watchlist import watchlist
from monitor.server import forms
from monitor.server import web as server_app
from monitor.server.web import build_app
from monitor.store.repository import Repository
from monitor.wiring import sync_watchlist
from tests.conftest import API_KEY, ConfigFactory
from tests.test_server import context_of, running


async def test_pages_carry_security_headers_and_allow_only_their_own_script(
    make_config: ConfigFactory,
) -> None:
    simulator = Simulator(api_key=API_KEY)
    async with running(make_config, simulator) as (_, http), http.get("/") as response:
        html = await response.text()
        headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    policy = headers["Content-Security-Policy"]
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    assert len(nonce) >= 16
    assert html.count(f'nonce="{nonce}"') == 2, "the page's one style and one script"
    assert "frame-ancestors 'none'" in policy


async def test_a_half_sent_request_is_timed_out(
    make_config: ConfigFactory, engine: AsyncEngine
) -> None:
    context = context_of(make_config(), engine)
    async with server_app.serve(context, idle_timeout=0.3) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5.0) == b"", "the server hung up"
        writer.close()


async def ask(
    make_config: ConfigFactory, engine: AsyncEngine, method: str, path: str
) -> tuple[int, str, dict[str, str]]:
    """One request to the server of a daemon that is not running: status, body, headers."""
    context = context_of(make_config(), engine)
    async with (
        TestServer(build_app(context)) as server,
        aiohttp.ClientSession() as http,
        http.request(method, server.make_url(path)) as response,
    ):
        return response.status, await response.text(), dict(response.headers)


async def test_a_wrong_method_under_the_api_names_the_allowed_one(
    make_config: ConfigFactory, engine: AsyncEngine
) -> None:
    status, _, headers = await ask(make_config, engine, "POST", "/api/events")
    assert status == 405
    assert "GET" in headers["Allow"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/changes?since=1e400",
        "/api/changes?since=nan",
        "/api/changes?since=-Infinity",
        "/api/changes?since=",
        "/api/changes?limit=99999999999999999999999",
        "/api/events?q=%00",
        "/api/events?after=a%00b",
        "/api/events/E%00X",
        "/api/events/EV1?since=99999-01-01T00:00:00Z",
    ],
)
async def test_odd_parameters_are_a_400_never_a_500(
    make_config: ConfigFactory, engine: AsyncEngine, path: str
) -> None:
    status, body, _ = await ask(make_config, engine, "GET", path)
    assert status == 400, body
    assert "error" in json.loads(body)


async def test_a_page_number_beyond_reason_shows_the_last_page(
    make_config: ConfigFactory, engine: AsyncEngine
) -> None:
    config = make_config(events=[{"id": f"E{i:03d}"} for i in range(150)])
    await sync_watchlist(Repository(engine), config, watchlist(config), time.time())
    context = context_of(config, engine)
    async with TestServer(build_app(context)) as server, aiohttp.ClientSession() as http:
        for page in ("9999", "99999999999999999999999"):
            async with http.get(server.make_url(f"/?page={page}")) as response:
                body = await response.text()
            assert response.status == 200, body
            shown = "Page 2 of 2" if page == "9999" else "Page 1 of 2"
            assert shown in body, page


@pytest.mark.unit
def test_aiohttp_tracebacks_for_requests_that_are_not_http_are_dropped() -> None:
    error = BadHttpMessage("Invalid header value char")
    malformed = logging.LogRecord(
        "aiohttp.server", logging.ERROR, "", 0, "Error", (), (BadHttpMessage, error, None)
    )
    failed = logging.LogRecord("aiohttp.server", logging.ERROR, "", 0, "Error", (), None)
    assert not MalformedRequestFilter().filter(malformed)
    assert MalformedRequestFilter().filter(failed)


TOKEN = "security-token-0042"


async def test_the_session_cookie_opens_the_dashboard_and_never_the_api(
    make_config: ConfigFactory,
) -> None:
    config = make_config(server={"port": 0, "token": TOKEN}, events=[{"id": "E1"}])
    async with Monitor(config) as monitor:
        assert monitor.url is not None
        assert monitor.context is not None
        session = {server_app.OPERATOR_COOKIE: server_app.session_value(TOKEN)}
        async with aiohttp.ClientSession(monitor.url, cookies=session) as browser:
            async with browser.get("/") as page:
                assert page.status == 200
            # What another page on the same site could send with the cookie: no body, no
            # CSRF value, no JSON.
            for path in ("/api/watches/E1/pause", "/api/deliveries/1/retry"):
                async with browser.post(path) as answer:
                    assert answer.status == 401, path
            async with browser.get("/api/watches") as answer:
                assert answer.status == 401
            async with browser.post("/events/E1/pause", allow_redirects=False) as answer:
                assert answer.status == 415, "a form without its CSRF value does nothing"
            async with browser.post(
                "/events/E1/pause", data={"csrf": "0" * 64}, allow_redirects=False
            ) as answer:
                assert answer.status == 403
            watch = await monitor.parts.stores.watches.get("E1")
            assert watch is None or not watch.paused
            csrf = forms.csrf_value(monitor.context)
            async with browser.post(
                "/events/E1/pause", data={"csrf": csrf}, allow_redirects=False
            ) as answer:
                assert answer.status == 303
        assert monitor.parts.poller.watchlist.get("E1") is None, "paused: no longer polled"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.1:1"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_a_write_from_another_site_is_refused_whatever_authenticates_it(
    make_config: ConfigFactory, headers: dict[str, str]
) -> None:
    config = make_config(server={"port": 0, "token": TOKEN}, events=[{"id": "E1"}])
    async with Monitor(config) as monitor:
        assert monitor.url is not None
        assert monitor.context is not None
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        session = {server_app.OPERATOR_COOKIE: server_app.session_value(TOKEN)}
        async with aiohttp.ClientSession(monitor.url, cookies=session) as http:
            async with http.post("/api/watches/E1/pause", headers={**bearer, **headers}) as a:
                assert a.status == 403
                assert (await a.json())["error"] == "a write from another site's page is refused"
            form = {"csrf": forms.csrf_value(monitor.context)}
            async with http.post(
                "/events/E1/pause", data=form, headers=headers, allow_redirects=False
            ) as answer:
                assert answer.status == 403
            async with http.get("/api/watches/E1", headers={**bearer, **headers}) as answer:
                assert answer.status == 200, "reading is not refused"
            # A browser's own form, under the no-referrer policy: Origin is "null".
            own = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
            async with http.post("/api/watches/E1/pause", headers={**bearer, **own}) as answer:
                assert answer.status == 200
            own = {"Origin": monitor.url}
            async with http.post("/api/watches/E1/resume", headers={**bearer, **own}) as answer:
                assert answer.status == 200
