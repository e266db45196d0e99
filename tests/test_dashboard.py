"""The dashboard in a real headless browser, next to a running daemon and the simulator."""

from __future__ import annotations

import re

import aiohttp
import pytest

from monitor.app import Monitor
from monitor.devtools.simulator import Simulator, serve
from monitor.models import Availability, Change, EventInfo, Outcome
from monitor.server.dashboard import Segment, timeline
from monitor.store.outbox import Attempt, Outbox
from monitor.store.rows import EventRow
from monitor.wording import ago
from tests.browser import chromium
from tests.conftest import API_KEY, ConfigFactory, change_with_delivery
from tests.support import RN, A, F, N, eventually


async def test_a_status_change_appears_on_the_page_without_a_reload(
    make_config: ConfigFactory,
) -> None:
    simulator = Simulator(api_key=API_KEY)
    for event_id in ("E1", "E2"):
        simulator.set(event_id, N, RN)
    async with serve(simulator) as upstream:
        config = make_config(
            ticketmaster={"base_url": upstream, "requests_per_second": 100},
            polling={"interval": "1s"},
            server={"port": 0, "refresh": "300ms"},
            events=[{"id": "E1", "name": "Eras Tour — Night 1"}, {"id": "E2"}],
        )
        async with Monitor(config) as monitor, chromium() as browser:
            assert monitor.url is not None
            page = await browser.new_page()
            await page.goto(monitor.url)
            row = page.locator('tr[data-event-id="E1"]')
            await row.locator(".status", has_text="Sold out").wait_for(timeout=5000)
            pill = row.locator(".status .pill")
            assert await pill.get_attribute("title") == "TICKETS_NOT_AVAILABLE", "the code too"
            assert "Eras Tour — Night 1" in await row.inner_text()
            await page.evaluate("window.sameDocument = true")

            simulator.set("E1", A)
            await row.locator(".status", has_text="On sale").wait_for(timeout=5000)

            async def counted() -> bool:
                return (await page.title()).startswith("(1 on sale) ")

            await eventually(counted, what="the title counting what is on sale")
            await page.locator("#changes", has_text="Eras Tour — Night 1").wait_for(timeout=5000)
            assert await page.evaluate("window.sameDocument") is True, "the page was reloaded"
            assert "Upstream OK" in await page.locator("#upstream").inner_text()

            await page.set_viewport_size({"width": 390, "height": 844})
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, "the page scrolls sideways on a phone"


@pytest.mark.unit
def test_timeline_segments_follow_the_changes() -> None:
    start, now = 0.0, 100.0
    row = EventRow("E1", None, True, Availability(A, RN), 0.0, 99.0, 60.0, None, EventInfo())
    changes = [
        Change("c1", "E1", None, Availability(N, RN), Availability(F, RN), 20.0),
        Change("c2", "E1", None, Availability(F, RN), Availability(A, RN), 60.0),
    ]
    assert timeline(row, changes, start, now) == [
        Segment("TICKETS_NOT_AVAILABLE", 0.0, 20.0),
        Segment("FEW_TICKETS_LEFT", 20.0, 40.0),
        Segment("TICKETS_AVAILABLE", 60.0, 40.0),
    ]
    first_seen_late = EventRow(
        "E2", None, True, Availability(N, RN), 50.0, 99.0, None, None, EventInfo()
    )
    assert timeline(first_seen_late, [], start, now) == [
        Segment("TICKETS_NOT_AVAILABLE", 50.0, 50.0)
    ]
    # Watched from 10 on: the state before the first change is drawn from then, not from
    # the start of the bar.
    watched_late = EventRow(
        "E3", None, True, Availability(A, RN), 10.0, 99.0, 60.0, None, EventInfo()
    )
    assert timeline(watched_late, changes, start, now) == [
        Segment("TICKETS_NOT_AVAILABLE", 10.0, 10.0),
        Segment("FEW_TICKETS_LEFT", 20.0, 40.0),
        Segment("TICKETS_AVAILABLE", 60.0, 40.0),
    ]


@pytest.mark.unit
def test_ago() -> None:
    assert [ago(s) for s in (None, 2, 42, 125, 7300, 200000)] == [
        "never",
        "just now",
        "42s ago",
        "2m ago",
        "2h ago",
        "2d ago",
    ]


async def test_each_event_has_a_page_of_its_own(make_config: ConfigFactory) -> None:
    simulator = Simulator(api_key=API_KEY)
    simulator.set("E1", N, RN)
    async with serve(simulator) as upstream:
        config = make_config(
            ticketmaster={"base_url": upstream, "requests_per_second": 100},
            polling={"interval": "1s"},
            server={"port": 0},
            events=[{"id": "E1", "name": "Pulp <script>alert(1)</script>"}],
        )
        async with Monitor(config) as monitor, aiohttp.ClientSession() as http:
            assert monitor.url is not None

            async def changed() -> bool:
                return bool(await monitor.parts.stores.reads.changes_of("E1"))

            await eventually(lambda: "E1" in simulator.asked, what="the first poll")
            simulator.set("E1", A, RN)
            await eventually(changed, what="the change")
            await monitor.parts.switchboard.dispatcher.drain()
            async with http.get(f"{monitor.url}/events/E1") as page:
                assert page.status == 200
                html = await page.text()
            assert "Pulp &lt;script&gt;" in html, "names are escaped"
            assert "<script>alert" not in html
            assert "Sold out → On sale" in html
            assert "console: " in html, "the change's delivery and its outcome"
            next_poll = re.search(r'<dd id="next-poll">([^<]*)</dd>', html)
            assert next_poll is not None
            assert re.fullmatch(r"in 1s|due now|now", next_poll[1]), "polled every second"
            async with http.get(f"{monitor.url}/") as dashboard:
                assert 'href="/events/E1"' in await dashboard.text()
            async with http.get(f"{monitor.url}/events/NOPE") as missing:
                assert missing.status == 404


async def test_failing_deliveries_are_shown_with_how_to_retry(make_config: ConfigFactory) -> None:
    config = make_config(server={"port": 0}, events=[{"id": "E1", "name": "Pulp"}])
    async with Monitor(config) as monitor, aiohttp.ClientSession() as http:
        assert monitor.url is not None
        async with http.get(f"{monitor.url}/") as page:
            assert "Every delivery is going through." in await page.text()
        await monitor.parts.stores.repository.save_poll(change_with_delivery(1, at=1.0))
        await monitor.parts.stores.repository.save_poll(change_with_delivery(2, at=2.0))
        outbox = Outbox(monitor.parts.stores.repository.engine)
        await outbox.record_attempts(
            [
                Attempt("d1", 3.0, Outcome.DEAD, 410, "HTTP 410 (gone)"),
                Attempt("d2", 3.0, Outcome.FAILED, 503, "HTTP 503", 99.0),
            ]
        )
        async with http.get(f"{monitor.url}/") as page:
            html = await page.text()
        assert "gave up</strong> after 1 attempt " in html
        assert "HTTP 410 (gone)" in html
        assert "inventory-monitor deliveries retry d1" in html
        assert "failing, 1 attempt;" in html
        assert "2 deliveries failing, 1 given up on" in html, "one entry for the notifier"
        assert "HTTP 503" in html
