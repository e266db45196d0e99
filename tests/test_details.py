"""Event details from the Discovery API: fetched when an event is added, refreshed on
schedule, shown with the configured name first and the event's own link, carried by every
message; Discovery failing never costs a poll."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from monitor.app import Monitor
from monitor.config import load_config
from monitor.devtools.catalog import discovery_event
from monitor.devtools.faults import ScriptedFault
from monitor.devtools.simulator import Simulator, serve
from monitor.discovery.client import DiscoveryClient
from monitor.discovery_jobs.refresher import LEASE, RETRY, DetailsRefresher
from monitor.markets import slug_words
from monitor.models import Availability, EventInfo, Venue
from monitor.notify.documents import change_message
from monitor.notify.notifiers.mqtt import status_of
from monitor.notify.rendering import Renderer
from monitor.notify.routing import Target
from monitor.polling.watchlist import Watch
from monitor.store.event_details import Details
from monitor.store.outbox import Outbox
from tests.conftest import API_KEY
from tests.e2e import Receiver, daemon_config
from tests.rig import INTERVAL, Rig, RigBuilder
from tests.support import RN, A, F, N, eventually

DAY = 86400.0
SHOW = datetime(2027, 7, 12, 18, 30, tzinfo=UTC)
LEGACY = "1F006248A0A61B2C"
LINK = f"https://www.ticketmaster.ie/oasis-live-25-tickets/event/{LEGACY}?brand=ie"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


async def watching(rig: RigBuilder) -> Rig:
    watches = {
        "vvG1zZ9pCY3Sp3": Watch("vvG1zZ9pCY3Sp3", None, INTERVAL, (Target("ops"),)),
        "G5vYZ9zZ1AdFK": Watch("G5vYZ9zZ1AdFK", "My name for it", INTERVAL, (Target("ops"),)),
        "Z7r9jZ1AdFKK6": Watch("Z7r9jZ1AdFKK6", None, INTERVAL, market="GB"),
        LEGACY: Watch(LEGACY, None, INTERVAL, partition="/IE/legacy", link=LINK, market="IE"),
    }
    r = await rig(watches=watches, batch_size=10)
    catalog = r.simulator.catalog
    catalog.add(discovery_event("vvG1zZ9pCY3Sp3", "Blur: Live", starts_at=SHOW, venue="O2"))
    catalog.add(
        discovery_event(
            "G5vYZ9zZ1AdFK", "Pulp", starts_at=SHOW, venue="Wembley", lifecycle="postponed"
        )
    )
    catalog.add(
        discovery_event(
            "UNIVERSAL-OF-LEGACY",
            "Oasis Live '25",
            starts_at=SHOW,
            venue="Croke Park",
            city="Dublin",
            country="IE",
            timezone="Europe/Dublin",
            url=f"https://www.ticketmaster.ie/oasis-live-25-tickets/event/{LEGACY}",
        )
    )
    catalog.add(discovery_event("OTHER", "Oasis Live '25 (other night)", starts_at=SHOW))
    # Z7r9jZ1AdFKK6 is not in the catalog: Discovery does not know every event.
    return r


def refresher(r: Rig, session: aiohttp.ClientSession, key: str = API_KEY) -> DetailsRefresher:
    return DetailsRefresher(
        Details(r.engine),
        lambda: DiscoveryClient(session, r.simulator_url, key, timeout=5.0),
        refresh=lambda: DAY,
        clock=r.clock,
        watchlist=lambda: r.poller.watchlist,
    )


async def infos(r: Rig) -> dict[str, EventInfo]:
    return {row.event_id: row.info for row in await r.reads.event_rows()}


async def test_details_are_fetched_when_added_and_again_a_refresh_later(
    rig: RigBuilder, session: aiohttp.ClientSession
) -> None:
    r = await watching(rig)
    details = refresher(r, session)
    before = r.simulator.requests
    assert await details.run() == 3
    assert r.simulator.requests - before == 2, "one search for the universal IDs, one legacy"

    shown = await infos(r)
    assert shown["vvG1zZ9pCY3Sp3"] == EventInfo(
        name="Blur: Live",
        starts_at=SHOW.timestamp(),
        timezone="Europe/London",
        venue=Venue("O2", "London", "GB"),
        url="https://www.ticketmaster.com/event/vvG1zZ9pCY3Sp3",
        lifecycle="onsale",
    )
    assert shown["G5vYZ9zZ1AdFK"].name == "My name for it", "the configured name wins"
    assert shown["G5vYZ9zZ1AdFK"].lifecycle == "postponed"
    assert shown[LEGACY].name == "Oasis Live '25", "found by the words of its link"
    assert shown[LEGACY].venue == Venue("Croke Park", "Dublin", "IE")
    assert shown[LEGACY].url == LINK, "the configured link wins"
    # Unknown to Discovery: still polled, shown by its ID, linked to its market's site.
    assert shown["Z7r9jZ1AdFKK6"] == EventInfo(
        url="https://www.ticketmaster.co.uk/event/Z7r9jZ1AdFKK6"
    )

    before = r.simulator.requests
    r.clock.advance(DAY * 0.8)
    assert await details.run() == 0
    assert r.simulator.requests == before, "nothing is due before its refresh"
    r.simulator.catalog.events["vvG1zZ9pCY3Sp3"]["name"] = "Blur: Live at the O2"
    r.clock.advance(DAY * 0.35)
    assert await details.run() == 3
    assert (await infos(r))["vvG1zZ9pCY3Sp3"].name == "Blur: Live at the O2"


async def test_messages_carry_the_event(rig: RigBuilder, session: aiohttp.ClientSession) -> None:
    r = await watching(rig)
    await refresher(r, session).run()
    r.simulator.set("vvG1zZ9pCY3Sp3", A, RN)
    await r.cycle()
    r.simulator.set("vvG1zZ9pCY3Sp3", F, RN)
    await r.cycle()
    (claimed,) = await Outbox(r.engine).claim_deliveries("ops", r.clock(), 10, r.clock() + 60)
    change = claimed.delivery.change
    assert change_message(change)["data"]["event"] == {
        "id": "vvG1zZ9pCY3Sp3",
        "name": "Blur: Live",
        "starts_at": "2027-07-12T18:30:00Z",
        "timezone": "Europe/London",
        "venue": {"name": "O2", "city": "London", "country": "GB"},
        "url": "https://www.ticketmaster.com/event/vvG1zZ9pCY3Sp3",
        "lifecycle": "onsale",
    }
    assert change_message(change)["data"]["event_name"] == "Blur: Live", (
        "the one name everywhere: Discovery's when the config gives none"
    )
    assert status_of(change).name == "Blur: Live"
    text = Renderer().body([change])
    assert text.startswith("Blur: Live (vvG1zZ9pCY3Sp3)\nWhen:    Mon 12 Jul 2027, 19:30\n")
    assert "Where:   O2, London\n" in text


async def test_an_event_never_described_has_every_field_null(rig: RigBuilder) -> None:
    r = await watching(rig)
    r.simulator.set("vvG1zZ9pCY3Sp3", A, RN)
    await r.cycle()
    r.simulator.set("vvG1zZ9pCY3Sp3", F, RN)
    await r.cycle()
    (claimed,) = await Outbox(r.engine).claim_deliveries("ops", r.clock(), 10, r.clock() + 60)
    event = change_message(claimed.delivery.change)["data"]["event"]
    assert event == {
        "id": "vvG1zZ9pCY3Sp3",
        "name": None,
        "starts_at": None,
        "timezone": None,
        "venue": {"name": None, "city": None, "country": None},
        "url": "https://www.ticketmaster.com/event/vvG1zZ9pCY3Sp3",
        "lifecycle": None,
    }


async def test_a_key_without_discovery_access_costs_details_not_polls(
    rig: RigBuilder, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    r = await watching(rig)
    details = refresher(r, session, key="no-discovery-key")
    with caplog.at_level(logging.WARNING):
        assert await details.run() == 0
    assert "the Discovery API refused the key" in caplog.text
    assert "no-discovery-key" not in caplog.text
    before = r.simulator.requests
    r.clock.advance(3600)
    assert await details.run() == 0
    assert r.simulator.requests == before, "paused for hours, not retried every run"
    r.simulator.set("vvG1zZ9pCY3Sp3", A, RN)
    await r.cycle()
    assert (await infos(r))["vvG1zZ9pCY3Sp3"].name is None
    states = {row.event_id: row.current for row in await r.reads.event_rows()}
    assert states["vvG1zZ9pCY3Sp3"] == Availability(A, RN), "polling goes on"


async def test_a_failing_discovery_is_asked_again_later(
    rig: RigBuilder, session: aiohttp.ClientSession
) -> None:
    r = await watching(rig)
    details = refresher(r, session)
    r.simulator.inject(ScriptedFault(status=503, body="<html>busy</html>"))
    assert await details.run() == 0
    r.clock.advance(RETRY - 1)
    before = r.simulator.requests
    assert await details.run() == 0
    assert r.simulator.requests == before
    r.clock.advance(1)
    assert await details.run() == 3


async def test_replicas_never_fetch_one_event_twice(rig: RigBuilder) -> None:
    r = await watching(rig)
    first = await Details(r.engine).claim(r.clock(), 200, r.clock() + LEASE)
    second = await Details(r.engine).claim(r.clock(), 200, r.clock() + LEASE)
    assert (len(first), second) == (4, [])
    r.clock.advance(LEASE)
    assert len(await Details(r.engine).claim(r.clock(), 200, r.clock() + LEASE)) == 4, (
        "a claim whose holder died comes due when its lease ends"
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("link", "words"),
    [
        (LINK, "oasis live 25"),
        (
            "https://www.ticketmaster.com/taylor-swift-the-eras-tour/event/0B005F8BC6A04A1B",
            "taylor swift the eras tour",
        ),
        ("https://www.ticketmaster.com/event/0B005F8BC6A04A1B", None),
        (None, None),
    ],
)
def test_a_link_gives_the_words_to_search(link: str | None, words: str | None) -> None:
    assert slug_words(link) == words


HOSTILE_ANSWERS = {
    "huge": " " * (16 * 1024 * 1024 + 1),
    "not JSON": "<html>maintenance</html>",
    "not an object": "[1, 2]",
    "events not a list": '{"_embedded": {"events": {"id": "E1"}}}',
    "odd fields": '{"_embedded": {"events": [{"id": 7, "dates": "soon", "_embedded": []}]}}',
}


@pytest.mark.parametrize("body", HOSTILE_ANSWERS.values(), ids=HOSTILE_ANSWERS.keys())
async def test_a_hostile_details_answer_is_skipped_with_one_warning(
    rig: RigBuilder,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    body: str,
) -> None:
    r = await watching(rig)
    details = refresher(r, session)
    r.simulator.inject(ScriptedFault(status=200, body=body))
    with caplog.at_level(logging.WARNING):
        await details.run()
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) <= 1, [w.getMessage() for w in warnings]
    assert all(API_KEY not in w.getMessage() for w in warnings)
    r.clock.advance(RETRY)
    if body == HOSTILE_ANSWERS["odd fields"]:
        # An answer that reads, with no event in it: the events count as unknown to
        # Discovery until the next refresh, and are polled all the same.
        assert await details.run() == 0
    else:
        assert await details.run() >= 3, "a failed fetch is asked again later, and read then"


async def test_a_show_held_in_the_uk_without_a_region_is_polled_with_region_uk(
    tmp_path: Path, hook: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A bare ID (or a .com link) of a show in GB answers UNKNOWN on the main endpoint;
    once Discovery says where it is held, it moves to region=UK and its changes come."""
    simulator = Simulator(api_key=API_KEY, markets={"GBSHOW1": "GB"})
    simulator.catalog.add(
        discovery_event("GBSHOW1", "Pulp", starts_at=SHOW, venue="Wembley", country="GB")
    )
    simulator.set("GBSHOW1", N, RN)
    caplog.set_level(logging.INFO)
    path = tmp_path / "monitor.yaml"
    async with serve(simulator) as upstream:
        daemon_config(
            path,
            upstream,
            [{"id": "GBSHOW1"}],
            notifiers={"ops": {"type": "webhook", "url": hook.url}},
        )
        async with Monitor(load_config(path), housekeeping_every=0.05) as monitor:
            await eventually(
                lambda: monitor.parts.poller.watchlist["GBSHOW1"].market == "GB", what="placed"
            )
            await eventually(lambda: simulator.kinds[False, "UK"] >= 2, what="polled as UK")
            simulator.set("GBSHOW1", A)
            await eventually(hook.received(1), what="its change")
    assert hook.bodies()[0]["data"]["current"]["status"] == A.value
    said = [r.message for r in caplog.records if "is held in GB" in r.message]
    assert len(said) == 1, "said once"
