"""Watches by artist, venue or search: `discover:` searches add the events they find, each
watched until it starts, announced once, kept when the search goes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from monitor.app import Monitor
from monitor.config import Config, load_config, parse_config
from monitor.devtools.catalog import discovery_event
from monitor.devtools.faults import ScriptedFault
from monitor.devtools.simulator import Simulator, serve
from monitor.discovery.client import DiscoveryClient
from monitor.discovery_jobs.discoverer import KEEP_AFTER_START, RETRY, Discoverer
from monitor.errors import ConfigError
from monitor.in_force import with_watches
from monitor.models import NoticeKind
from monitor.polling.watchlist import watchlist
from monitor.store.engine import create_engine, upgrade
from monitor.store.watches import Origin, Watches
from monitor.upstream.quota import search_plan
from tests.conftest import API_KEY, FakeClock
from tests.e2e import Receiver, daemon_config
from tests.support import RN, A, N, eventually

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def shows(simulator: Simulator) -> None:
    catalog = simulator.catalog
    for index, city in enumerate(("London", "Manchester", "Glasgow")):
        catalog.add(
            discovery_event(
                f"OASIS{index}",
                f"Oasis Live '25 — {city}",
                starts_at=NOW + timedelta(days=10 * (index + 1)),
                city=city,
                attraction=("K8vZ917Oasis", "Oasis"),
            )
        )
    catalog.add(
        discovery_event(
            "OASIS-OFF",
            "Oasis (cancelled)",
            starts_at=NOW + timedelta(days=5),
            lifecycle="canceled",
        )
    )
    catalog.add(discovery_event("BLUR1", "Blur", starts_at=NOW + timedelta(days=3)))
    catalog.add(discovery_event("OASIS-LATE", "Oasis 2029", starts_at=NOW + timedelta(days=700)))


CONFIG = {
    "ticketmaster": {"api_key": API_KEY},
    "notifiers": {"fans": {"type": "log"}, "ops": {"type": "log", "tags": ["ops"]}},
    "events": [{"id": "OASIS2", "name": "My Glasgow night"}],
    "discover": [
        {
            "name": "oasis-uk",
            "keyword": "Oasis",
            "country_code": "GB",
            "every": "6h",
            "window": "365d",
            "watch": {"interval": "60s", "notify": ["fans"], "tags": ["oasis"]},
        }
    ],
}


def config_of(**changes: object) -> Config:
    return parse_config(yaml.safe_dump({**CONFIG, **changes}), "monitor.yaml", {})


@pytest.mark.unit
@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({"name": "x"}, "discover[0]: say what to search for: keyword, attraction_id"),
        ({"name": "x", "keyword": "Oasis", "every": "1m"}, "discover[0].every"),
        (
            {"name": "x", "keyword": "Oasis", "watch": {"notify": ["nobody"]}},
            "discover[0].watch.notify[0]: no notifier is named 'nobody'",
        ),
        ({"name": "x", "keyword": "Oasis", "watch": {"colour": "red"}}, "unknown key"),
    ],
)
def test_searches_that_cannot_run_are_refused(search: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        config_of(discover=[search])
    assert message in str(refused.value)


@pytest.mark.unit
def test_search_names_are_unique() -> None:
    search = {"name": "x", "keyword": "Oasis"}
    with pytest.raises(ConfigError, match="duplicate search 'x'"):
        config_of(discover=[search, search])


Sent = list[tuple[tuple[str, ...], NoticeKind, str, list[str]]]


@pytest.fixture
async def discovering(
    database_url: str,
) -> AsyncIterator[tuple[Simulator, Watches, Discoverer, FakeClock, Sent, list[Config]]]:
    clock = FakeClock(NOW.timestamp())
    simulator = Simulator(api_key=API_KEY, clock=clock)
    shows(simulator)
    sent: Sent = []
    config = [config_of()]

    async def notify(
        names: Sequence[str], kind: NoticeKind, subject: str, lines: list[str]
    ) -> None:
        sent.append((tuple(names), kind, subject, lines))

    engine = create_engine(database_url)
    await upgrade(engine)
    watches = Watches(engine)
    async with serve(simulator) as url, aiohttp.ClientSession() as session:
        discoverer = Discoverer(
            watches,
            lambda: DiscoveryClient(session, url, API_KEY, timeout=5.0),
            config=lambda: config[0],
            clock=clock,
            notify=notify,
        )
        yield simulator, watches, discoverer, clock, sent, config
    await engine.dispose()


async def test_a_search_adds_what_it_finds_once_and_lets_it_expire(
    discovering: tuple[Simulator, Watches, Discoverer, FakeClock, Sent, list[Config]],
) -> None:
    simulator, watches, discoverer, clock, sent, config = discovering
    assert await discoverer.run()
    stored = await watches.stored()
    # Not the configured one, not the cancelled one, not Blur, not beyond the window.
    assert [item.event_id for item in stored] == ["OASIS0", "OASIS1"]
    assert {(item.origin, item.search) for item in stored} == {(Origin.DISCOVER, "oasis-uk")}
    (names, kind, subject, lines) = sent[0]
    assert (names, kind, subject) == (("fans",), NoticeKind.FOUND, "2 new Oasis shows found")
    assert lines[0] == "Oasis Live '25 — London — 2027-03-11 12:00 — Arena, London (OASIS0)"

    watched = with_watches(config[0], await watches.stored())
    assert [e.id for e in watched.events] == ["OASIS2", "OASIS0", "OASIS1"]
    london = watchlist(watched)["OASIS0"]
    assert (london.name, london.interval, london.market) == ("Oasis Live '25 — London", 60.0, "GB")
    assert london.until == (NOW + timedelta(days=10)).timestamp(), "watched until it starts"
    assert [t.notifier for t in london.targets] == ["fans"]

    before = simulator.requests
    assert not await discoverer.run(), "not due again for 6h"
    assert simulator.requests == before
    clock.advance(6 * 3600)
    assert not await discoverer.run(), "nothing new: no change, no notice"
    assert simulator.requests == before + 1
    assert len(sent) == 1

    config[0] = config_of(discover=[])  # the search is removed: what it added stays
    assert [i.event_id for i in await watches.stored()] == ["OASIS0", "OASIS1"]
    clock.now = (NOW + timedelta(days=10)).timestamp() + KEEP_AFTER_START + 1
    assert await discoverer.run(), "the London show has started: it leaves the watchlist"
    assert [i.event_id for i in await watches.stored()] == ["OASIS1"]


async def test_a_search_matching_too_many_says_how_many_it_took(
    discovering: tuple[Simulator, Watches, Discoverer, FakeClock, Sent, list[Config]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, watches, discoverer, _, _, config = discovering
    search = dict(CONFIG["discover"][0])  # type: ignore[index]
    config[0] = config_of(discover=[{**search, "max_events": 2}])
    with caplog.at_level(logging.WARNING):
        await discoverer.run()
    assert "discover oasis-uk: 4 events match; only the first 2 are taken (max_events is 2)" in (
        caplog.text
    )
    # The soonest two: the cancelled show, which is not watched, and the London one.
    assert [item.event_id for item in await watches.stored()] == ["OASIS0"]


async def test_found_events_are_polled_by_the_running_daemon(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    simulator = Simulator(api_key=API_KEY)
    soon = datetime.now(UTC) + timedelta(days=30)
    simulator.catalog.add(discovery_event("OASISX", "Oasis Live '25", starts_at=soon))
    simulator.set("OASISX", A, RN)
    path = tmp_path / "monitor.yaml"
    caplog.set_level(logging.INFO)
    async with serve(simulator) as upstream:
        daemon_config(
            path,
            upstream,
            [{"id": "E1"}],
            discover=[{"name": "oasis", "keyword": "Oasis", "watch": {"interval": "1s"}}],
        )
        async with Monitor(load_config(path), housekeeping_every=0.05) as monitor:
            await eventually(lambda: "OASISX" in simulator.asked, what="the found event polled")
            row = await monitor.parts.stores.reads.event_row("OASISX")
            assert row is not None
            assert row.found_by == "oasis"
            assert "1 new Oasis show found" in caplog.text


async def test_a_found_events_first_change_carries_its_venue_and_start(
    tmp_path: Path, hook: Receiver
) -> None:
    """What the search answered is kept at once: no details fetch is spent, and none is
    waited for."""
    simulator = Simulator(api_key=API_KEY)
    soon = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    simulator.catalog.add(
        discovery_event(
            "OASISX", "Oasis Live '25", starts_at=soon, venue="Croke Park", city="Dublin"
        )
    )
    simulator.set("OASISX", N, RN)
    path = tmp_path / "monitor.yaml"
    async with serve(simulator) as upstream:
        daemon_config(
            path,
            upstream,
            [],
            discover=[{"name": "oasis", "keyword": "Oasis", "watch": {"interval": "1s"}}],
            notifiers={"ops": {"type": "webhook", "url": hook.url}},
        )
        async with Monitor(load_config(path), housekeeping_every=0.05, follow_every=0.1):
            await eventually(lambda: simulator.times_asked["OASISX"] >= 2, what="a baseline")
            searches = simulator.discovery_requests
            simulator.set("OASISX", A)

            def changes() -> list[dict[str, Any]]:
                return [b for b in hook.bodies() if b["type"] == "inventory.changed"]

            await eventually(lambda: bool(changes()), what="its first change")
            assert simulator.discovery_requests == searches, "no details fetch was needed"
    assert hook.bodies()[0]["type"] == "discover.found", "and the find, first"
    event = changes()[0]["data"]["event"]
    assert event["starts_at"] == soon.isoformat().replace("+00:00", "Z")
    assert event["venue"] == {"name": "Croke Park", "city": "Dublin", "country": "GB"}


async def test_without_discovery_no_discovery_request_is_made(tmp_path: Path) -> None:
    """For keys without Discovery access: no details, no searches, polling as ever."""
    simulator = Simulator(api_key=API_KEY)
    soon = datetime.now(UTC) + timedelta(days=30)
    simulator.catalog.add(discovery_event("E1", "Oasis Live '25", starts_at=soon))
    simulator.set("E1", A, RN)
    path = tmp_path / "monitor.yaml"
    async with serve(simulator) as upstream:
        daemon_config(
            path,
            upstream,
            [{"id": "E1"}],
            discover=[{"name": "oasis", "keyword": "Oasis"}],
            discovery={"enabled": False},
        )
        async with Monitor(load_config(path), housekeeping_every=0.02) as monitor:
            await eventually(lambda: simulator.answered >= 2, what="two polls")
            row = await monitor.parts.stores.reads.event_row("E1")
            assert row is not None
            assert row.current is not None
            assert row.info.name is None
    assert simulator.discovery_requests == 0


@pytest.mark.parametrize(
    "body",
    [
        " " * (16 * 1024 * 1024 + 1),
        "<html>maintenance</html>",
        "[1, 2]",
        '{"_embedded": {"events": {"id": "E1"}}, "page": "one"}',
    ],
    ids=["huge", "not JSON", "not an object", "events not a list"],
)
async def test_a_hostile_search_answer_is_skipped_with_one_warning(
    discovering: tuple[Simulator, Watches, Discoverer, FakeClock, Sent, list[Config]],
    caplog: pytest.LogCaptureFixture,
    body: str,
) -> None:
    simulator, watches, discoverer, clock, sent, _ = discovering
    simulator.inject(ScriptedFault(status=200, body=body))
    with caplog.at_level(logging.WARNING):
        assert not await discoverer.run()
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.startswith("discover oasis-uk: the search failed (")
    assert API_KEY not in warning
    assert (await watches.stored(), sent) == ([], [])
    clock.advance(RETRY)
    assert await discoverer.run(), "tried again later, and taken then"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("every", "max_events", "searches", "pages", "runs_every"),
    [
        pytest.param(6 * 3600, 200, 1, 1, 6 * 3600, id="well within its share"),
        pytest.param(600, 1000, 1, 3, 600, id="fewer pages a run"),
        pytest.param(600, 1000, 2, 1, 600, id="two searches share the cap"),
        pytest.param(600, 200, 4, 1, 691.2, id="then longer between runs"),
        pytest.param(3600, 5000, 1, 5, 3600, id="never past Discovery's 1,000th result"),
    ],
)
def test_a_search_stays_within_its_share_of_the_quota(
    every: float, max_events: int, searches: int, pages: int, runs_every: float
) -> None:
    config = config_of(
        discover=[
            {"name": f"s{i}", "keyword": "Oasis", "every": f"{every}s", "max_events": 1000}
            for i in range(searches)
        ]
    )
    plan = search_plan(config, every, max_events)
    assert plan.pages == pages
    assert plan.every == pytest.approx(runs_every)
    share = config.discovery.max_share * config.ticketmaster.daily_quota / searches
    assert plan.pages * 86400 / plan.every <= share + 1e-9


async def test_a_broad_search_spends_no_more_than_its_share(
    discovering: tuple[Simulator, Watches, Discoverer, FakeClock, Sent, list[Config]],
) -> None:
    """A search matching thousands, every 10 minutes, with a quota of 5,000: one page a run
    where 5 would be asked, and runs far enough apart that it spends 10% a day at most."""
    simulator, _, discoverer, clock, _, config = discovering
    for i in range(1200):
        simulator.catalog.add(
            discovery_event(
                f"BIG{i}", f"Oasis night {i}", starts_at=NOW + timedelta(days=2 + i % 300)
            )
        )
    search = {"name": "oasis-uk", "keyword": "Oasis", "every": "10m", "max_events": 1000}
    config[0] = config_of(discover=[search], discovery={"max_share": 0.02})
    before = simulator.discovery_requests
    day_end = clock() + 86400
    while clock() < day_end:
        await discoverer.run()
        clock.advance(300)
    spent = simulator.discovery_requests - before
    assert 50 <= spent <= 0.02 * 5000, "it runs, within 2% of a quota of 5,000"


@pytest.mark.unit
def test_check_shows_the_searches_cap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.cli.main import main

    path = tmp_path / "monitor.yaml"
    search = {"name": "everything", "country_code": "GB", "every": "10m", "max_events": 1000}
    path.write_text(yaml.safe_dump({**CONFIG, "discover": [search]}))
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "for 1 search (at most 500: discovery.max_share 10%)" in out
    assert "discover:  everything runs every 10m and takes 600 events at most" in out
