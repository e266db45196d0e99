"""The dashboard's write controls in a real headless browser, next to a running daemon, the
simulator and a real webhook receiver: add by link, pause, snooze, remove and undo, follow
an artist and retry, on a phone too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp

from monitor.app import Monitor
from monitor.devtools.catalog import discovery_event
from monitor.devtools.simulator import Simulator, serve
from monitor.models import Outcome
from monitor.server.forms import csrf_value
from monitor.store.outbox import Attempt, Outbox
from tests.browser import chromium
from tests.conftest import API_KEY, ConfigFactory, change_with_delivery
from tests.e2e import Receiver
from tests.support import RN, A, N, eventually

TOKEN = "dashboard-write-token-42"
LEGACY = "1F006248A0A61B2C"
LINK = f"https://www.ticketmaster.co.uk/oasis-tickets/event/{LEGACY}"


async def test_add_pause_snooze_and_remove_from_the_page(
    make_config: ConfigFactory, hook: Receiver
) -> None:
    simulator = Simulator(api_key=API_KEY, markets={LEGACY: "GB"})
    simulator.set("E1", N, RN)
    simulator.set(LEGACY, N, RN)
    simulator.catalog.add(
        discovery_event(
            "OASISSHOW",
            "Oasis at Wembley",
            starts_at=datetime.now(UTC) + timedelta(days=40),
            attraction=("K8vZ917Oasis", "Oasis"),
        )
    )
    simulator.set("OASISSHOW", A, RN)
    async with serve(simulator) as upstream:
        config = make_config(
            ticketmaster={"base_url": upstream, "requests_per_second": 100},
            polling={"interval": "1s"},
            server={"port": 0, "token": TOKEN, "refresh": "200ms"},
            notifiers={"fans": {"type": "webhook", "url": hook.url}},
            events=[{"id": "E1", "name": "Blur"}],
        )
        async with (
            Monitor(config, housekeeping_every=0.1, follow_every=0.2) as monitor,
            chromium() as browser,
        ):
            assert monitor.url is not None
            page = await browser.new_page()
            await page.goto(f"{monitor.url}/?token={TOKEN}")

            # A refused Add says why, beside the form, and keeps what was typed.
            await page.fill("input[name=event]", "https://www.ticketmaster.fr/x/event/E5")
            await page.fill("form.add input[name=name]", "Paris")
            await page.click("form.add button[type=submit]")
            problem = await page.inner_text("#add-problem")
            assert "cannot be watched" in problem
            assert await page.input_value("input[name=event]") == (
                "https://www.ticketmaster.fr/x/event/E5"
            )
            assert await page.input_value("form.add input[name=name]") == "Paris"
            await page.fill("form.add input[name=name]", "")

            # Add by pasting a link: the event's page opens, and the event is polled. What is
            # typed survives the page's own refreshes.
            await page.fill("input[name=event]", LINK)
            await page.locator("h1").click()
            await page.evaluate("document.getElementById('upstream').dataset.old = '1'")
            await page.locator("#upstream:not([data-old])").wait_for(timeout=5000)
            assert await page.input_value("input[name=event]") == LINK
            await page.fill("form.add input[name=name]", "Oasis")
            await page.check("input[name=notify][value=fans]")
            await page.click("form.add button[type=submit]")
            await page.wait_for_url(f"**/events/{LEGACY}")
            assert "added here or with the CLI" in await page.inner_text("#watch-state")
            await eventually(lambda: LEGACY in simulator.asked, what="the added event polled")
            await page.goto(monitor.url)
            row = page.locator(f'tr[data-event-id="{LEGACY}"]')
            await row.locator(".status", has_text="Sold out").wait_for(timeout=5000)
            assert "Oasis" in await row.inner_text()
            colours = [
                await row.locator(f"{cell} .pill").evaluate(
                    "e => getComputedStyle(e).backgroundColor"
                )
                for cell in (".status", ".resale")
            ]
            assert colours[0] != colours[1], "no resale is not the red of sold out"

            # Pause: no more polls, while the others go on.
            await page.goto(f"{monitor.url}/events/{LEGACY}")
            await page.click("#controls button:has-text('Pause')")
            await page.wait_for_url(f"**/events/{LEGACY}")
            assert "paused" in await page.inner_text("#watch-state")
            paused_at = simulator.times_asked[LEGACY]
            others = simulator.times_asked["E1"]
            await eventually(lambda: simulator.times_asked["E1"] >= others + 3, what="more ticks")
            assert simulator.times_asked[LEGACY] == paused_at, "a paused event is not polled"
            # The paused event stays listed, greyed, with its Resume button.
            await page.goto(monitor.url)
            paused_row = page.locator(f'tr.paused[data-event-id="{LEGACY}"]')
            await paused_row.wait_for(timeout=5000)
            assert "Oasis" in await paused_row.inner_text()
            await paused_row.locator("button:has-text('Resume')").click()
            await page.wait_for_url(f"**/events/{LEGACY}")
            await eventually(lambda: simulator.times_asked[LEGACY] > paused_at, what="polled again")

            # Snooze: the change is stored, and nobody is told.
            await page.select_option("select[name=for]", "1h")
            await page.click("#controls button:has-text('Snooze')")
            await page.wait_for_url(f"**/events/{LEGACY}")
            assert "snoozed" in await page.inner_text("#watch-state")
            simulator.set(LEGACY, A, RN)

            async def stored() -> bool:
                return any(
                    c.current.status == A
                    for c in await monitor.parts.stores.reads.changes_of(LEGACY)
                )

            await eventually(stored, what="the change stored while snoozed")
            await monitor.parts.switchboard.dispatcher.drain()
            assert hook.requests == [], "nobody told while snoozed"

            # Unsnooze: what the snooze held goes out, once.
            await page.click("#controls button:has-text('Unsnooze')")
            await page.wait_for_url(f"**/events/{LEGACY}")
            assert "snoozed" not in await page.inner_text("#watch-state")
            await eventually(hook.received(1), what="the held change told")
            assert hook.bodies()[0]["data"]["current"]["status"] == A.value

            # Remove asks first, and can be undone a moment after: watched again, as it was.
            await page.click("#remove summary")
            await page.click("#remove button:has-text('Yes, stop watching')")
            await page.wait_for_url(f"{monitor.url}/")
            assert LEGACY not in monitor.parts.poller.watchlist
            assert "Stopped watching Oasis" in await page.inner_text("#removed")
            await page.locator(f'tr[data-event-id="{LEGACY}"]').wait_for(state="detached")
            await page.click("#removed button:has-text('Undo')")
            await page.wait_for_url(f"**/events/{LEGACY}")
            assert LEGACY in monitor.parts.poller.watchlist
            restored = await monitor.parts.stores.watches.get(LEGACY)
            assert restored is not None
            assert restored.settings.get("notify") == ["fans"], "with its settings"

            # Remove: the event leaves the watchlist; its page and history stay.
            await page.click("#remove summary")
            await page.click("#remove button:has-text('Yes, stop watching')")
            await page.wait_for_url(f"{monitor.url}/")
            assert LEGACY not in monitor.parts.poller.watchlist
            await page.locator(f'tr[data-event-id="{LEGACY}"]').wait_for(state="detached")
            await page.goto(f"{monitor.url}/events/{LEGACY}")
            audit = await page.inner_text("#audit")
            for words in ("Watched", "Paused", "Resumed", "Snoozed until", "Snooze ended"):
                assert f"{words}" in audit, words
            assert "No longer watched by dashboard" in audit
            assert "{" not in audit, "in words, not JSON"
            # In the reader's own time zone.
            tokyo = await browser.new_page(timezone_id="Asia/Tokyo", locale="en-GB")
            await tokyo.goto(f"{monitor.url}/?token={TOKEN}")
            await tokyo.goto(f"{monitor.url}/events/{LEGACY}")
            first = tokyo.locator("#audit time.local").first
            at = datetime.fromisoformat(str(await first.get_attribute("datetime")))
            assert at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%H:%M") in (
                await first.inner_text()
            )
            assert "UTC" in str(await first.get_attribute("title")), "UTC, on hover"
            await tokyo.close()
            assert await page.locator("#controls").count() == 0, "nothing left to control"

            # A config watch is removed in the file.
            await page.goto(f"{monitor.url}/events/E1")
            assert "remove it there" in await page.inner_text("#controls")

            # Follow an artist: their shows are found and listed, by date.
            await page.goto(monitor.url)
            await page.fill("#follow input[name=artist]", "oasis")
            await page.click("#follow button:has-text('Follow')")
            await page.locator("#searches", has_text="Oasis").wait_for(timeout=5000)
            await page.locator('tr[data-event-id="OASISSHOW"]').wait_for(timeout=10000)
            ids = await page.eval_on_selector_all(
                "tr[data-event-id]", "rows => rows.map(r => r.dataset.eventId)"
            )
            assert ids[0] == "OASISSHOW", "the show with a date first"

            # Pages fit a 390 px phone.
            await page.set_viewport_size({"width": 390, "height": 844})
            for path in ("/", "/events/OASISSHOW", f"/events/{LEGACY}", "/events/E1"):
                await page.goto(f"{monitor.url}{path}")
                width = await page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, f"{path} is {width} px wide"


async def test_a_dead_delivery_is_retried_from_the_page(make_config: ConfigFactory) -> None:
    config = make_config(
        server={"port": 0, "token": TOKEN},
        notifiers={"ops": {"type": "log"}},
        events=[{"id": "E1", "name": "Pulp"}],
    )
    async with Monitor(config) as monitor, chromium() as browser:
        assert monitor.url is not None
        for number in (1, 2, 3):
            await monitor.parts.stores.repository.save_poll(
                change_with_delivery(number, at=float(number))
            )
        outbox = Outbox(monitor.parts.stores.repository.engine)
        await outbox.record_attempts(
            [Attempt(f"d{n}", 3.0, Outcome.DEAD, 410, "HTTP 410 (gone)") for n in (1, 2, 3)]
        )
        page = await browser.new_page()
        await page.goto(f"{monitor.url}/?token={TOKEN}")
        group = page.locator("#deliveries > li")
        assert await group.count() == 1, "a receiver's outage is one entry, not one a delivery"
        assert "3 deliveries failing, 3 given up on" in await group.inner_text()
        await page.click("#deliveries summary")
        await page.locator("#deliveries button:has-text('Retry')").first.click()
        await page.wait_for_url(f"{monitor.url}/#attention")

        async def delivered() -> bool:
            rows = await outbox.list_deliveries()
            return any(row.state == "delivered" and row.attempts == 2 for row in rows)

        await eventually(delivered, what="the dead delivery sent again")


async def test_forms_need_the_session_and_their_csrf_value(make_config: ConfigFactory) -> None:
    config = make_config(server={"port": 0, "token": TOKEN}, events=[{"id": "E1"}])
    async with Monitor(config) as monitor:
        assert monitor.url is not None
        assert monitor.context is not None
        good = {"csrf": csrf_value(monitor.context), "event": "E2"}
        async with (
            aiohttp.ClientSession(monitor.url) as stranger,
            stranger.post("/watches", data=good, allow_redirects=False) as answer,
        ):
            assert answer.status == 401, "another site's form carries no session"
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(monitor.url, headers=bearer) as http:
            forged = {**good, "csrf": "0" * 64}
            async with http.post("/watches", data=forged) as answer:
                assert answer.status == 403
                assert "reload the page" in await answer.text()
            async with http.post("/watches", json=good) as answer:
                assert answer.status == 415, "forms only"
            async with http.post("/watches", data=good, allow_redirects=False) as answer:
                assert (answer.status, answer.headers["Location"]) == (303, "/events/E2")
        assert "E2" in monitor.parts.poller.watchlist
