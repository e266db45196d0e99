"""Finding what to watch: Discovery answers read leniently, searches paged within the API's
limits, and `find` printing a table and entries ready to paste."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from monitor.config.loader import parse_config
from monitor.devtools.catalog import discovery_event
from monitor.devtools.faults import ScriptedFault
from monitor.devtools.simulator import Simulator, serve
from monitor.discovery.client import DiscoveryClient, DiscoveryRefused, Search
from monitor.discovery.details import (
    EventDetails,
    PriceRange,
    Sale,
    ShapeError,
    parse_event,
)
from monitor.models import Venue
from tests.conftest import API_KEY
from tests.e2e import run_cli

SHOW = datetime(2027, 7, 12, 18, 30, tzinfo=UTC)


@pytest.mark.unit
def test_an_event_document_is_read_field_by_field() -> None:
    doc = discovery_event(
        "vvG1zZ9pCY3Sp3",
        "Oasis Live '25",
        starts_at=SHOW,
        venue="Wembley Stadium",
        url="https://www.ticketmaster.co.uk/oasis/event/1F006248A0A61B2C",
        public_sale=(SHOW - timedelta(days=90), SHOW),
        presales=(("Fan presale", SHOW - timedelta(days=92), SHOW - timedelta(days=91)),),
        price=(75.0, 350.5, "GBP"),
    )
    assert parse_event(doc) == EventDetails(
        id="vvG1zZ9pCY3Sp3",
        name="Oasis Live '25",
        url="https://www.ticketmaster.co.uk/oasis/event/1F006248A0A61B2C",
        starts_at=SHOW.timestamp(),
        local_date="2027-07-12",
        timezone="Europe/London",
        venue=Venue("Wembley Stadium", "London", "GB"),
        lifecycle="onsale",
        sales=(
            Sale("public", None, (SHOW - timedelta(days=90)).timestamp(), SHOW.timestamp()),
            Sale(
                "presale",
                "Fan presale",
                (SHOW - timedelta(days=92)).timestamp(),
                (SHOW - timedelta(days=91)).timestamp(),
            ),
        ),
        price=PriceRange(75.0, 350.5, "GBP"),
        venue_id="V-WembleyStadium",
    )


@pytest.mark.unit
@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param({"id": "E1"}, EventDetails("E1"), id="nothing but an id"),
        pytest.param(
            {"id": "E1", "name": 7, "dates": "soon", "_embedded": {"venues": "x"}},
            EventDetails("E1"),
            id="wrong types read as unknown",
        ),
        pytest.param(
            {"id": "E1", "dates": {"start": {"dateTime": "tomorrow"}, "status": {"code": "lost"}}},
            EventDetails("E1"),
            id="an odd date and lifecycle read as unknown",
        ),
        pytest.param(
            {"id": "E1", "dates": {"start": {"localDate": "2027-01-02", "dateTimeTBA": True}}},
            EventDetails("E1", local_date="2027-01-02"),
            id="a date without a time",
        ),
        pytest.param(
            {"id": "E1", "priceRanges": [{"min": 10, "currency": "USD"}, {"max": 99.5}]},
            EventDetails("E1", price=PriceRange(10.0, 99.5, "USD")),
            id="price ranges merged",
        ),
        pytest.param(
            {"id": "E1", "sales": {"presales": [{"name": "no dates"}]}},
            EventDetails("E1"),
            id="a sale without a start is no sale",
        ),
    ],
)
def test_missing_or_odd_fields_read_as_unknown(doc: dict[str, Any], expected: EventDetails) -> None:
    assert parse_event(doc) == expected


@pytest.mark.unit
@pytest.mark.parametrize("doc", [None, [], {"name": "no id"}, {"id": ""}, {"id": 5}])
def test_an_item_without_an_id_is_no_event(doc: object) -> None:
    with pytest.raises(ShapeError):
        parse_event(doc)


@pytest.fixture
async def discovery() -> AsyncIterator[tuple[Simulator, DiscoveryClient]]:
    simulator = Simulator(api_key=API_KEY)
    async with serve(simulator) as url, aiohttp.ClientSession() as session:
        yield simulator, DiscoveryClient(session, url, API_KEY, timeout=5.0)


def shows(simulator: Simulator, count: int, *, country: str = "GB", name: str = "Oasis") -> None:
    for i in range(count):
        simulator.catalog.add(
            discovery_event(
                f"{name[0]}{country}{i:05d}",
                f"{name} night {i}",
                starts_at=SHOW + timedelta(days=i),
                country=country,
                city="Dublin" if country == "IE" else "London",
            )
        )


async def test_a_search_takes_its_filters_and_pages_soonest_first(
    discovery: tuple[Simulator, DiscoveryClient],
) -> None:
    simulator, client = discovery
    shows(simulator, 250, country="GB")
    shows(simulator, 3, country="IE")
    shows(simulator, 4, country="GB", name="Blur")

    found = await client.search(Search(keyword="oasis", country_code="GB"), most=230)
    assert (len(found.events), found.total, found.cut_by_depth) == (230, 250, False)
    assert [e.name for e in found.events[:2]] == ["Oasis night 0", "Oasis night 1"]
    assert client.requests == 2, "200 a page: two pages for 230 events"

    dublin = await client.search(Search(city="dublin"), most=100)
    assert {e.venue.country for e in dublin.events} == {"IE"}
    assert dublin.total == 3

    later = await client.search(
        Search(keyword="Oasis", starts_after=SHOW + timedelta(days=248)), most=100
    )
    assert [e.name for e in later.events] == ["Oasis night 248", "Oasis night 249"]

    nothing = await client.search(Search(keyword="Pulp"), most=100)
    assert (nothing.events, nothing.total) == ((), 0)


async def test_a_huge_search_stops_where_discovery_stops_paging(
    discovery: tuple[Simulator, DiscoveryClient],
) -> None:
    simulator, client = discovery
    shows(simulator, 1_100)
    found = await client.search(Search(keyword="Oasis"), most=1_000)
    assert (len(found.events), found.total) == (1_000, 1_100)
    assert client.requests == 5
    deeper = await client.search(Search(keyword="Oasis"), most=1_000_000)
    assert deeper.cut_by_depth
    assert len(deeper.events) == 1_000


async def test_items_that_are_no_events_are_counted_not_fatal(
    discovery: tuple[Simulator, DiscoveryClient],
) -> None:
    simulator, client = discovery
    shows(simulator, 2)
    simulator.catalog.add({"id": "", "name": "Oasis ghost", "dates": {"start": {}}, **_shell()})
    found = await client.search(Search(keyword="Oasis"), most=10)
    assert (len(found.events), found.malformed) == (2, 1)


def _shell() -> dict[str, Any]:
    return {
        "_embedded": {
            "venues": [{"id": "V", "city": {"name": "X"}, "country": {"countryCode": "GB"}}]
        },
        "classifications": [],
    }


async def test_a_key_without_discovery_access_is_told_apart() -> None:
    simulator = Simulator(api_key=API_KEY)
    async with serve(simulator) as url, aiohttp.ClientSession() as session:
        client = DiscoveryClient(session, url, "some-other-key", timeout=5.0)
        with pytest.raises(DiscoveryRefused) as refused:
            await client.search(Search(keyword="Oasis"), most=10)
    assert "does the API key have access to the Discovery API?" in str(refused.value)
    assert "some-other-key" not in str(refused.value)


def find_config(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "find.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "ticketmaster": {"base_url": base_url, "api_key": API_KEY},
                "notifiers": {"console": {"type": "log"}},
            }
        )
    )
    return path


async def test_find_prints_a_table_and_entries_ready_to_paste(tmp_path: Path) -> None:
    simulator = Simulator(api_key=API_KEY)
    shows(simulator, 3, country="IE")
    simulator.catalog.add(
        discovery_event("PARIS1", "Oasis à Paris", starts_at=SHOW, country="FR", city="Paris")
    )
    async with serve(simulator) as url:
        config = find_config(tmp_path, url)
        code, out, err = await run_cli("find", "--keyword", "Oasis", "--config", str(config))
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0].split() == ["ID", "DATE", "NAME", "VENUE", "CITY", "STATUS"]
        assert "OIE00000  2027-07-12 19:30  Oasis night 0" in out, "the venue's own time"
        assert "4 of 4 matching events shown" in out
        assert "# PARIS1: not watchable, the API answers UNKNOWN for every event in FR" in out

        snippet = out.split("# paste under `events:` in your configuration\n")[1]
        pasted = parse_config(
            f"ticketmaster: {{api_key: {API_KEY}}}\nnotifiers: {{c: {{type: log}}}}\n"
            f"events:\n{snippet}",
            "pasted.yaml",
            {},
        )
        assert [(e.id, e.name, e.region) for e in pasted.events] == [
            ("OIE00000", "Oasis night 0", "IE"),
            ("OIE00001", "Oasis night 1", "IE"),
            ("OIE00002", "Oasis night 2", "IE"),
        ]

        code, out, _ = await run_cli(
            "find", "--keyword", "Oasis", "--country", "ie", "--json", "--config", str(config)
        )
        assert code == 0
        assert '"starts_at": "2027-07-12T18:30:00+00:00"' in out
        found = json.loads(out)
        assert [event["id"] for event in found] == ["OIE00000", "OIE00001", "OIE00002"]
        assert found[0]["venue"]["id"] == "V-Arena", "the ID a search by venue takes"

        code, out, _ = await run_cli("find", "--config", str(config))
        assert (code, out.strip()) == (
            2,
            "find: say what to look for: --keyword, --artist, --attraction, --venue, --country, "
            "--city",
        )
        code, out, _ = await run_cli("find", "--city", "x", "--from", "soon", "-c", str(config))
        assert (code, out.strip()) == (
            2,
            "find: --from: expected a date such as 2027-06-21, got 'soon'",
        )


async def test_find_looks_an_artist_up_by_name_and_prints_the_ids_searches_take(
    tmp_path: Path,
) -> None:
    simulator = Simulator(api_key=API_KEY)
    monkeys = ("K8vZ91713wV", "Arctic Monkeys")
    for index, city in enumerate(("Sheffield", "Manchester")):
        simulator.catalog.add(
            discovery_event(
                f"AM{index}",
                f"Arctic Monkeys in {city}",
                starts_at=SHOW + timedelta(days=index),
                venue=f"{city} Arena",
                city=city,
                attraction=monkeys,
            )
        )
    simulator.catalog.add(
        discovery_event(
            "TRIB1",
            "A tribute night",
            starts_at=SHOW,
            attraction=("K8vTRIBUTE", "Arctic Monkeys Tribute"),
        )
    )
    async with serve(simulator) as url:
        config = find_config(tmp_path, url)
        code, out, err = await run_cli("find", "--artist", "arctic monkeys", "-c", str(config))
        assert code == 0, err
        assert out.startswith("artist: Arctic Monkeys (K8vZ91713wV)\n"), "the exact name wins"
        assert "AM0" in out
        assert "AM1" in out
        assert "TRIB1" not in out
        assert "  K8vZ91713wV  Arctic Monkeys" in out
        assert "  V-SheffieldArena  Sheffield Arena" in out
        code, out, _ = await run_cli("find", "--artist", "Nobody Here", "-c", str(config))
        assert (code, out.strip()) == (
            1,
            "find: Discovery knows no artist, team or act named 'Nobody Here'",
        )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("<html>maintenance</html>", "answered with a body that is not JSON"),
        ("[1, 2]", "answered with JSON that is not an object"),
        ('{"_embedded": {"events": {"id": "E1"}}}', "`_embedded.events` that is not a list"),
    ],
)
async def test_an_answer_of_another_shape_is_a_clear_error(
    discovery: tuple[Simulator, DiscoveryClient], body: str, says: str
) -> None:
    simulator, client = discovery
    simulator.inject(ScriptedFault(status=200, body=body, content_type="application/json"))
    with pytest.raises(ShapeError) as refused:
        await client.search(Search(keyword="Oasis"), most=10)
    assert says in str(refused.value)
    assert API_KEY not in str(refused.value)
