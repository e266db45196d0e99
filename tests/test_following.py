"""Following an artist at runtime (the API, the CLI): a search kept in the database and run
beside the config file's, whose shows are watched until they start; and undoing the
removal of a watch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from monitor.app import Monitor
from monitor.devtools.catalog import discovery_event
from monitor.devtools.simulator import Simulator, serve
from monitor.following import name_for
from monitor.store.watches import Origin
from tests.conftest import API_KEY, ConfigFactory
from tests.e2e import Receiver, run_cli
from tests.support import RN, A, eventually

TOKEN = "following-token-7"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}
OASIS = ("K8vZ917Oasis", "Oasis")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("artist", "name"),
    [
        ("Oasis", "oasis"),
        ("Florence + the Machine", "florence-the-machine"),
        ("AC/DC", "ac-dc"),
        ("!!!", "search"),
        ("The Very Long Name Of A Band That Goes On", "the-very-long-name-of-a-band-t"),
    ],
)
def test_a_search_is_named_after_its_artist(artist: str, name: str) -> None:
    assert name_for(artist) == name


def oasis_simulator() -> Simulator:
    simulator = Simulator(api_key=API_KEY)
    start = datetime.now(UTC) + timedelta(days=30)
    for index, city in enumerate(("Manchester", "Dublin")):
        simulator.catalog.add(
            discovery_event(
                f"OA{index}SHOW",
                f"Oasis in {city}",
                starts_at=start + timedelta(days=index),
                city=city,
                attraction=OASIS,
            )
        )
        simulator.set(f"OA{index}SHOW", A, RN)
    return simulator


def config_of(make_config: ConfigFactory, upstream: str, hook: Receiver) -> dict[str, Any]:
    return {
        "ticketmaster": {"base_url": upstream, "api_key": API_KEY, "requests_per_second": 100},
        "polling": {"interval": "1s"},
        "server": {"port": 0, "token": TOKEN},
        "notifiers": {"fans": {"type": "webhook", "url": hook.url}},
        "discover": [{"name": "blur", "keyword": "Blur"}],
        "events": [{"id": "E1"}],
    }


async def test_the_operator_follows_an_artist_through_the_api(
    make_config: ConfigFactory, hook: Receiver
) -> None:
    simulator = oasis_simulator()
    async with serve(simulator) as upstream:
        config = make_config(**config_of(make_config, upstream, hook))
        async with (
            Monitor(config, housekeeping_every=0.1, follow_every=0.2) as monitor,
            aiohttp.ClientSession(monitor.url, headers=OPERATOR) as http,
        ):

            async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
                async with http.request(method, path, json=body) as response:
                    json = response.content_type == "application/json"
                    return response.status, await response.json() if json else None

            status, search = await call("POST", "/api/searches", {"artist": "oasis"})
            assert status == 201, search
            assert (search["name"], search["artist"]) == ("oasis", "Oasis")
            assert search["attraction_id"] == OASIS[0]

            await eventually(
                lambda: {"OA0SHOW", "OA1SHOW"} <= set(monitor.parts.poller.watchlist),
                what="the artist's shows watched",
            )
            found = await monitor.parts.stores.watches.get("OA0SHOW")
            assert found is not None
            assert (found.origin, found.search) == (Origin.DISCOVER, "oasis")
            await eventually(hook.received(1), what="the fans told of the shows found")
            assert "Oasis in Manchester" in hook.bodies()[0]["data"]["body"]

            _, listed = await call("GET", "/api/searches")
            assert [(s["name"], s["origin"]) for s in listed["searches"]] == [
                ("blur", "config"),
                ("oasis", "api"),
            ]

            refusals = [
                ({"artist": "Oasis"}, 409, "name"),  # followed already
                ({"name": "blur", "keyword": "x"}, 409, "name"),  # the config file's
                ({"artist": "Nobody Here"}, 404, "artist"),
                ({"keyword": "Oasis", "when": ["TICKETS_AVAILABLE"]}, 409, "name"),  # "oasis"
                ({"artist": "Oasis", "name": "o2", "notify": ["nobody"]}, 400, "notify"),
                ({"artist": "Oasis", "name": "o3", "window": "2hours"}, 400, "window"),
                ({"artist": "Oasis", "name": "o4", "colour": "red"}, 400, "colour"),
            ]
            for body, code, field in refusals:
                status, problem = await call("POST", "/api/searches", body)
                assert (status, problem["field"]) == (code, field), body
            assert "2h" in (await call("POST", "/api/searches", refusals[5][0]))[1]["error"]

            assert (await call("DELETE", "/api/searches/blur"))[0] == 409
            assert (await call("DELETE", "/api/searches/oasis"))[0] == 204
            assert (await call("DELETE", "/api/searches/oasis"))[0] == 404
            _, listed = await call("GET", "/api/searches")
            assert [s["name"] for s in listed["searches"]] == ["blur"]
            assert "OA0SHOW" in monitor.parts.poller.watchlist, (
                "what it found stays until it starts"
            )


async def test_the_cli_follows_an_artist_next_to_a_running_daemon(
    make_config: ConfigFactory, hook: Receiver, tmp_path: Path
) -> None:
    simulator = oasis_simulator()
    async with serve(simulator) as upstream:
        data = config_of(make_config, upstream, hook)
        data["database"] = {"url": f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"}
        path = tmp_path / "monitor.yaml"
        path.write_text(yaml.safe_dump(data))
        config = make_config(**data)
        async with Monitor(config, housekeeping_every=0.1, follow_every=0.2) as monitor:
            code, out, err = await run_cli(
                "watch", "follow", "Oasis", "--notify", "fans", "--config", str(path)
            )
            assert code == 0, err
            assert "following Oasis as 'oasis'" in out
            await eventually(
                lambda: {"OA0SHOW", "OA1SHOW"} <= set(monitor.parts.poller.watchlist),
                what="the daemon runs the search the CLI wrote",
            )
            code, out, _ = await run_cli("watch", "searches", "--config", str(path))
            assert code == 0
            lines = out.splitlines()
            assert lines[0].split() == ["NAME", "FOLLOWS", "FROM", "FOUND"]
            assert lines[1].split()[:4] == ["blur", "Blur", "config", "file"]

            async def counted() -> bool:
                _, out, _ = await run_cli("watch", "searches", "--config", str(path))
                return "2 events" in out

            await eventually(counted, what="the run's count listed")
            code, _, err = await run_cli("watch", "unfollow", "blur", "--config", str(path))
            assert code == 1
            assert "remove it from the config file" in err
            code, out, _ = await run_cli("watch", "unfollow", "oasis", "--config", str(path))
            assert code == 0
            assert "no longer followed" in out
