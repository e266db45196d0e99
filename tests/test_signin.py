"""Signing in to the dashboard: each user sees their own page, guessing is slowed, and a
person at a browser never meets a JSON error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest

from monitor.app import Monitor
from monitor.devtools.simulator import Simulator
from monitor.models import ResaleStatus, Status
from monitor.server.signin import ATTEMPTS, USER_COOKIE, WINDOW, Attempts
from monitor.store.accounts import Role
from monitor.users import Users
from tests.browser import chromium
from tests.conftest import API_KEY, ConfigFactory, FakeClock
from tests.running import in_process
from tests.support import eventually

TOKEN = "signin-operator-token-93"
PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22"}


@asynccontextmanager
async def running(make_config: ConfigFactory, **server: object) -> AsyncIterator[Monitor]:
    simulator = Simulator(api_key=API_KEY)
    for event_id in ("ALICE01", "BOB0001"):
        simulator.set(event_id, Status.TICKETS_NOT_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE)
    async with in_process(
        make_config,
        simulator,
        token=TOKEN,
        follow_every=0.2,
        server=server,
        users={"min_interval": "1s"},
    ) as daemon:
        users = _users(daemon.monitor)
        for name, password in PASSWORDS.items():
            await users.add(name, Role.MEMBER, password)
        yield daemon.monitor


def _users(monitor: Monitor) -> Users:
    assert monitor.context is not None
    assert monitor.context.users is not None
    return monitor.context.users


async def test_two_fans_sign_in_side_by_side_and_each_sees_their_own_shows(
    make_config: ConfigFactory,
) -> None:
    async with running(make_config) as monitor, chromium() as browser:
        assert monitor.url is not None
        pages = {}
        for name, show in (("alice", "ALICE01"), ("bob", "BOB0001")):
            context = await browser.new_context(viewport={"width": 390, "height": 800})
            page = await context.new_page()
            await page.goto(monitor.url + "/")
            assert page.url.endswith("/signin"), "signed out, the dashboard is the sign-in page"
            await page.fill("input[name=name]", name)
            await page.fill("input[name=password]", PASSWORDS[name])
            await page.click("button[type=submit]")
            await page.wait_for_selector("#shows")
            assert await page.text_content("#who") == name
            await page.fill("#follow input[name=event]", show)
            await page.click("#follow button")
            await page.wait_for_selector(f"tr[data-event={show}]")
            await page.fill("#add-channel input[name=name]", "phone")
            await page.fill("#add-channel input[name=url]", f"ntfy://ntfy.example.org/{name}")
            await page.click("#add-channel button")
            await page.wait_for_selector("li[data-channel=phone]")
            pages[name] = page

        for name, other in (("alice", "BOB0001"), ("bob", "ALICE01")):
            page = pages[name]
            await page.goto(monitor.url + "/")
            await page.click("#calendar button")
            feed = await page.text_content("#calendar-url")
            assert feed is not None
            assert "/api/me/calendar.ics?key=" in feed
            assert await page.locator(f"tr[data-event={other}]").count() == 0, "not theirs"
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{name}'s page fits a phone ({width}px)"
        await eventually(
            lambda: {"ALICE01", "BOB0001"} <= set(monitor.parts.poller.watchlist),
            what="both polled",
        )
        alice = pages["alice"]
        await alice.reload()
        assert await alice.text_content("tr[data-event=ALICE01] .pill") == "Sold out"

        await alice.click("form[action='/signout'] button")
        await alice.wait_for_selector("#signin")
        await alice.goto(monitor.url + "/")
        assert alice.url.endswith("/signin"), "signed out for good"
        await pages["bob"].reload()
        assert await pages["bob"].text_content("#who") == "bob", "bob is still signed in"


async def test_the_session_cookie_and_a_dashboard_opened_signed_out(
    make_config: ConfigFactory,
) -> None:
    async with (
        running(make_config, secure_cookies=True) as monitor,
        aiohttp.ClientSession(monitor.url or "") as http,
    ):
        async with http.get("/", allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (303, "/signin")
        async with http.get("/signin") as response:
            assert response.content_type == "text/html"
        form = {"name": "alice", "password": PASSWORDS["alice"]}
        async with http.post("/signin", data=form, allow_redirects=False) as response:
            assert response.status == 303
            cookie = response.cookies[USER_COOKIE]
        assert cookie["httponly"]
        assert cookie["samesite"] == "Strict"
        assert cookie["secure"], "server.secure_cookies marks it Secure"
        jar = {USER_COOKIE: cookie.value}
        async with http.get("/", cookies=jar) as response:
            assert response.status == 200
            assert "My shows" in await response.text()
        async with http.get("/api/events", cookies=jar) as response:
            assert response.status == 401, "a session opens pages, never the JSON API"
        async with http.get("/events/ALICE01", cookies=jar, allow_redirects=False) as response:
            assert response.status == 403, "a member's session opens their own page alone"

        await _users(monitor).set_disabled("alice", True)
        async with http.get("/", cookies=jar, allow_redirects=False) as response:
            assert response.status == 303, "a disabled user's session ends"


async def test_five_failures_in_a_minute_hold_the_name_back(make_config: ConfigFactory) -> None:
    async with running(make_config) as monitor, aiohttp.ClientSession(monitor.url or "") as http:
        wrong = {"name": "alice", "password": "not-her-password"}
        for _ in range(ATTEMPTS):
            async with http.post("/signin", data=wrong, allow_redirects=False) as response:
                assert response.status == 401
                assert "do not match" in await response.text()
        right = {"name": "alice", "password": PASSWORDS["alice"]}
        async with http.post("/signin", data=right, allow_redirects=False) as response:
            assert response.status == 429, "held back even with the right password"
            assert "too many attempts, try again in" in await response.text()
        bob = {"name": "bob", "password": PASSWORDS["bob"]}
        async with http.post("/signin", data=bob, allow_redirects=False) as response:
            assert response.status == 429, "and so is this address, for any name"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("failures", "after", "wait"),
    [
        (ATTEMPTS - 1, 0.0, 0.0),
        (ATTEMPTS, 0.0, WINDOW),
        (ATTEMPTS, 20.0, WINDOW - 20.0),
        (ATTEMPTS, WINDOW, 0.0),
        (ATTEMPTS * 3, WINDOW - 1.0, 1.0),
    ],
)
def test_the_wait_after_failures(failures: int, after: float, wait: float) -> None:
    clock = FakeClock(1000.0)
    attempts = Attempts(clock)
    for _ in range(failures):
        attempts.failed(["name:alice"])
    clock.now += after
    assert attempts.wait(["name:alice", "address:10.0.0.1"]) == pytest.approx(wait)
    attempts.succeeded(["name:alice"])
    assert attempts.wait(["name:alice"]) == 0.0
