"""Events as users name them: legacy and universal IDs, links from any market, and the
region UK and Irish events need. Each request carries what its events need, and never
mixes events that need different things."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config.loader import parse_config
from monitor.errors import ConfigError
from monitor.markets import (
    EVENT_LINK,
    PLAIN,
    BadEventId,
    EventLink,
    IdKind,
    RequestKind,
    event_link,
    id_kind,
    parse_event_url,
    partition,
    request_kind,
)
from monitor.models import Availability, ResaleStatus, Status
from monitor.polling.watchlist import Watch
from tests.rig import INTERVAL, RigBuilder

LEGACY = "0B005F8BC6A04A1B"
A, RN = Status.TICKETS_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE


@pytest.mark.unit
@pytest.mark.parametrize(
    ("event_id", "kind"),
    [
        ("vvG1zZ9pCY3Sp3", IdKind.UNIVERSAL),
        ("17AOv8G6G5rI0S0", IdKind.UNIVERSAL),
        ("G5diZfkn0B-bh", IdKind.UNIVERSAL),
        ("E1", IdKind.UNIVERSAL),
        (LEGACY, IdKind.LEGACY),
        ("0b005f8bc6a04a1b", IdKind.LEGACY),
        ("0B005F8BC6A04A1", IdKind.UNIVERSAL),  # 15 hex digits: not a legacy ID
    ],
)
def test_id_kinds(event_id: str, kind: IdKind) -> None:
    assert id_kind(event_id) is kind


@pytest.mark.unit
@pytest.mark.parametrize(
    ("event_id", "says"),
    [
        (f"https://www.ticketmaster.com/x/event/{LEGACY}", "give it as `url:` instead of `id:`"),
        (f"www.ticketmaster.co.uk/x/event/{LEGACY}", "give it as `url:` instead of `id:`"),
        ("two words", "expected a universal ID"),
        ("-leading-dash", "or a legacy one (16 hex digits"),
    ],
)
def test_what_is_no_id_says_what_to_do(event_id: str, says: str) -> None:
    with pytest.raises(BadEventId, match=r".*") as raised:
        id_kind(event_id)
    assert says in str(raised.value)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("url", "link"),
    [
        (
            f"https://www.ticketmaster.com/taylor-swift-the-eras-tour/event/{LEGACY}",
            EventLink(
                LEGACY,
                IdKind.LEGACY,
                "US",
                f"https://www.ticketmaster.com/taylor-swift-the-eras-tour/event/{LEGACY}",
            ),
        ),
        (
            f"https://www.ticketmaster.co.uk/oasis-live-25/event/{LEGACY}?brand=uk&_ga=1#x",
            EventLink(
                LEGACY,
                IdKind.LEGACY,
                "GB",
                f"https://www.ticketmaster.co.uk/oasis-live-25/event/{LEGACY}",
            ),
        ),
        (
            f"https://ticketmaster.ie/event/{LEGACY}/",
            EventLink(LEGACY, IdKind.LEGACY, "IE", f"https://ticketmaster.ie/event/{LEGACY}"),
        ),
        (
            f"http://WWW.Ticketmaster.com.au:80/a/event/{LEGACY}",
            EventLink(
                LEGACY, IdKind.LEGACY, "AU", f"https://www.ticketmaster.com.au/a/event/{LEGACY}"
            ),
        ),
        (
            "https://www.ticketmaster.com:443/event/Z7r9jZ1AdFKK6",
            EventLink(
                "Z7r9jZ1AdFKK6",
                IdKind.UNIVERSAL,
                "US",
                "https://www.ticketmaster.com/event/Z7r9jZ1AdFKK6",
            ),
        ),
        (
            f"https://www.ticketmaster.de/%22%3E%3Cscript%3E/event/{LEGACY}",
            EventLink(
                LEGACY,
                IdKind.LEGACY,
                "DE",
                f"https://www.ticketmaster.de/%22%3E%3Cscript%3E/event/{LEGACY}",
            ),
        ),
        (
            f'https://www.ticketmaster.de/a"b<c>/event/{LEGACY}',
            EventLink(LEGACY, IdKind.LEGACY, "DE", f"https://www.ticketmaster.de/event/{LEGACY}"),
        ),
        (
            f"  https://www.ticketmaster.ca/x/event/{LEGACY}  ",
            EventLink(LEGACY, IdKind.LEGACY, "CA", f"https://www.ticketmaster.ca/x/event/{LEGACY}"),
        ),
    ],
)
def test_links_from_every_market(url: str, link: EventLink) -> None:
    assert parse_event_url(url) == link


@pytest.mark.unit
@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://www.ticketmaster.com/artist/806431", "does not point at an event"),
        ("https://www.ticketmaster.fr/event/ABC123", "France cannot be watched"),
        (f"https://www.ticketmaster.it/x/event/{LEGACY}", "answers UNKNOWN for every one"),
        (f"https://www.livenation.com/event/{LEGACY}", "not a Ticketmaster site"),
        (f"https://notticketmaster.com/event/{LEGACY}", "not a Ticketmaster site"),
        ("ftp://www.ticketmaster.com/event/E1", "not a web link"),
        ("https://www.ticketmaster.com/x/event/a%20b", "is not an event ID"),
        (
            f"https://evil.example\\@www.ticketmaster.com/x/event/{LEGACY}",
            "a link with a backslash is refused",
        ),
        (
            f"https://user:pass@www.ticketmaster.com/x/event/{LEGACY}",
            "a link with a user name or password before its host is refused",
        ),
        (f"https://www.ticketmaster.com@evil.example/event/{LEGACY}", "is refused"),
        (f"https://www.ticketmaster.com:8443/x/event/{LEGACY}", "has no port; this one gives 8443"),
        (f"https://www.ticketmaster.com:99999/x/event/{LEGACY}", "not a web link"),
        (f"https://www.ticketmaster.com%2eevil.example/event/{LEGACY}", "not a web link"),
        (f"https://[::1]/event/{LEGACY}", "not a web link"),
    ],
)
def test_links_that_name_no_watchable_event(url: str, says: str) -> None:
    with pytest.raises(BadEventId) as raised:
        parse_event_url(url)
    assert says in str(raised.value)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("source", "region", "kind", "key", "request_"),
    [
        (None, None, IdKind.UNIVERSAL, "", PLAIN),
        (None, None, IdKind.LEGACY, "//legacy", RequestKind(legacy=True)),
        (None, "GB", IdKind.UNIVERSAL, "/GB", RequestKind(region="UK")),
        (None, "IE", IdKind.LEGACY, "/IE/legacy", RequestKind(legacy=True, region="UK")),
        ("tmr", "US", IdKind.UNIVERSAL, "tmr/US", PLAIN),
        (None, "DE", IdKind.LEGACY, "/DE/legacy", RequestKind(legacy=True)),
    ],
)
def test_partitions_say_what_requests_carry(
    source: str | None, region: str | None, kind: IdKind, key: str, request_: RequestKind
) -> None:
    assert partition(source, region, kind) == key
    assert request_kind(key) == request_


@pytest.mark.unit
def test_links_go_to_the_market_site() -> None:
    assert event_link("E1", None) == "https://www.ticketmaster.com/event/E1"
    assert event_link("E1", "GB") == "https://www.ticketmaster.co.uk/event/E1"
    assert event_link("E1", "IE", "https://x.example/e") == "https://x.example/e"


CONFIG = "ticketmaster: {api_key: sk-test-key}\nnotifiers: {log: {type: log}}\nevents:\n"


@pytest.mark.unit
def test_a_pasted_link_is_an_event_entry() -> None:
    config = parse_config(
        CONFIG + f"  - url: https://www.ticketmaster.co.uk/oasis/event/{LEGACY}?x=1\n"
        "  - {id: vvG1zZ9pCY3Sp3, region: ie}\n  - id: vvG1zZ9pCY3Sp4\n",
        "watch.yaml",
        {},
    )
    linked, irish, plain = config.events
    assert (linked.id, linked.region, linked.kind) == (LEGACY, "GB", IdKind.LEGACY)
    assert linked.url == f"https://www.ticketmaster.co.uk/oasis/event/{LEGACY}", "rebuilt"
    assert [config.partition_of(e) for e in config.events] == ["/GB/legacy", "/IE", ""]
    assert plain.kind is IdKind.UNIVERSAL
    assert irish.kind is IdKind.UNIVERSAL


@pytest.mark.unit
@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            f"  - id: https://www.ticketmaster.com/x/event/{LEGACY}\n",
            "watch.yaml:4: events[0].id: this is a link, not an ID: give it as `url:`",
        ),
        ("  - id: 'tickets please'\n", "watch.yaml:4: events[0].id: 'tickets please' is not"),
        (
            "  - url: https://www.ticketmaster.com/tour/123\n",
            "watch.yaml:4: events[0]: url: the link does not point at an event",
        ),
        (
            "  - url: https://www.ticketmaster.fr/event/ABC\n",
            "events[0]: url: events in France cannot be watched",
        ),
        (
            f"  - {{url: 'https://www.ticketmaster.ie/event/{LEGACY}', region: US}}\n",
            "events[0]: url: the link is on the IE site, but region says US",
        ),
        ("  - {name: Oasis}\n", "events[0]: give the event as `id:` or as `url:`"),
    ],
)
def test_entries_that_name_no_event_are_refused_with_a_hint(entry: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(CONFIG + entry, "watch.yaml", {})
    assert message in str(raised.value)


async def test_each_request_carries_what_its_events_need(rig: RigBuilder) -> None:
    """A UK event asks with `region=UK` and a legacy ID asks the legacy endpoint, each in
    requests of its own: the simulator answers UNKNOWN to any other request, as the API
    does."""
    watches = {
        "E1": Watch("E1", "Plain", INTERVAL),
        "UK1": Watch("UK1", "London", INTERVAL, partition=partition(None, "GB", IdKind.UNIVERSAL)),
        "IE1": Watch("IE1", "Dublin", INTERVAL, partition=partition(None, "IE", IdKind.UNIVERSAL)),
        LEGACY: Watch(LEGACY, "Legacy", INTERVAL, partition=partition(None, None, IdKind.LEGACY)),
    }
    r = await rig(watches=watches, batch_size=10)
    r.simulator.markets.update({"UK1": "GB", "IE1": "IE"})
    for event_id in watches:
        r.simulator.set(event_id, A, RN)
    await r.cycle()
    states = {row.event_id: row.current for row in await r.reads.event_rows()}
    assert states == dict.fromkeys(watches, Availability(A, RN))
    # UK and IE share their region parameter but not their region: 4 requests, none mixed.
    assert r.simulator.kinds == {(False, None): 1, (False, "UK"): 2, (True, None): 1}


async def test_without_its_region_a_uk_event_answers_unknown(
    rig: RigBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    """The simulator holds the API's rule, so the test above cannot pass by accident; the
    daemon says what is probably wrong."""
    r = await rig(ids=("UK1",))
    r.simulator.markets["UK1"] = "GB"
    r.simulator.set("UK1", A, RN)
    await r.cycle()
    ((_, current),) = [(row.event_id, row.current) for row in await r.reads.event_rows()]
    assert current is None, "UNKNOWN is not believed on a first poll"
    assert "UK1: the API answered UNKNOWN on its first poll" in caplog.text
    assert "without `region: GB` or `IE`" in caplog.text


@pytest.mark.unit
@settings(max_examples=100, deadline=None)
@given(st.from_regex(EVENT_LINK, fullmatch=True))
def test_every_link_the_api_document_allows_is_read(url: str) -> None:
    """The OpenAPI document states the links the API takes as `EVENT_LINK`: each one must
    pass, or a request the document calls valid would be refused."""
    link = parse_event_url(url)
    assert link.url.startswith("https://")
    assert link.url.endswith(f"/event/{link.event_id}")
