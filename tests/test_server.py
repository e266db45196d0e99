"""The daemon's HTTP server, in a running Monitor polling the simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.app import Monitor
from monitor.config import Config, load_config
from monitor.devtools.simulator import Simulator, serve
from monitor.errors import ConfigError
from monitor.metrics import Metrics
from monitor.polling.watchlist import watchlist
from monitor.server.api import AvailabilityOut, ChangesPage, EventDetail, EventsPage, Readiness
from monitor.server.context import Context
from monitor.server.web import build_app
from monitor.store.engine import create_engine, upgrade
from monitor.store.reads import Reads
from monitor.store.repository import Repository
from monitor.store.tables import event_details, events
from monitor.store.watches import Watches
from monitor.upstream.health import Upstream
from monitor.wiring import PACING, sync_watchlist
from tests.conftest import API_KEY, ConfigFactory
from tests.e2e import run_cli
from tests.running import in_process
from tests.support import RN, A, F, eventually, free_port

TOKEN = "dashboard-token-5f4e3d2c"


@asynccontextmanager
async def running(
    make_config: ConfigFactory, simulator: Simulator, **sections: Any
) -> AsyncIterator[tuple[Monitor, aiohttp.ClientSession]]:
    async with in_process(
        make_config,
        simulator,
        ticketmaster={"batch_size": 2},
        events=[{"id": "E1", "name": "Eras Tour"}, {"id": "E2"}, {"id": "E3"}],
        **sections,
    ) as daemon:
        yield daemon.monitor, daemon.http


def on_sale(*event_ids: str) -> Simulator:
    """A simulator with tickets on sale for each of `event_ids`."""
    simulator = Simulator(api_key=API_KEY)
    for event_id in event_ids:
        simulator.set(event_id, A, RN)
    return simulator


def context_of(
    config: Config, engine: AsyncEngine, polling: Callable[[], bool] = lambda: True
) -> Context:
    """What the server reads, without a daemon around it."""
    clock = time.time
    return Context(
        lambda: config,
        Reads(engine),
        Upstream(clock=clock),
        Metrics(),
        clock,
        started_at=clock(),
        polling=polling,
    )


async def json_of(http: aiohttp.ClientSession, path: str, status: int = 200) -> Any:
    async with http.get(path) as response:
        assert response.status == status, await response.text()
        assert response.content_type == "application/json"
        return await response.json()


async def test_the_api_lists_pages_filters_and_details_events(
    make_config: ConfigFactory,
) -> None:
    simulator = on_sale("E1", "E2", "E3")
    async with running(make_config, simulator) as (monitor, http):

        async def all_polled() -> bool:
            page = await json_of(http, "/api/events")
            return all(e["status"] for e in page["events"])

        await eventually(all_polled)
        simulator.set("E1", F)

        async def changed() -> bool:
            return bool((await json_of(http, "/api/changes"))["changes"])

        await eventually(changed)

        first = EventsPage.model_validate(await json_of(http, "/api/events?limit=2"))
        assert [e.id for e in first.events] == ["E1", "E2"]
        assert (first.total, first.next) == (3, "E2")
        rest = EventsPage.model_validate(await json_of(http, "/api/events?limit=2&after=E2"))
        assert ([e.id for e in rest.events], rest.next) == (["E3"], None)
        few = EventsPage.model_validate(await json_of(http, "/api/events?status=FEW_TICKETS_LEFT"))
        assert [(e.id, e.name, e.status) for e in few.events] == [
            ("E1", "Eras Tour", "FEW_TICKETS_LEFT")
        ]
        assert few.events[0].last_changed_at is not None

        detail = EventDetail.model_validate(await json_of(http, "/api/events/E1"))
        assert [c.current for c in detail.changes] == [
            AvailabilityOut(status="FEW_TICKETS_LEFT", resale_status="TICKETS_NOT_AVAILABLE")
        ]
        assert [s.status for s in detail.snapshots] == ["TICKETS_AVAILABLE", "FEW_TICKETS_LEFT"]
        later = EventDetail.model_validate(
            await json_of(http, f"/api/events/E1?since={detail.changes[0].observed_at}")
        )
        assert later.changes == []

        changes = ChangesPage.model_validate(await json_of(http, "/api/changes?since=0"))
        (change,) = changes.changes
        assert isinstance(change.previous, AvailabilityOut)
        assert isinstance(change.current, AvailabilityOut)
        assert (change.kind, change.event_id, change.previous.status, change.current.status) == (
            "inventory",
            "E1",
            "TICKETS_AVAILABLE",
            "FEW_TICKETS_LEFT",
        )
        assert change.changed == ["status"]
        assert await json_of(http, "/api/events/NOPE", 404) == {
            "error": "no event 'NOPE' has been watched"
        }
        assert await json_of(http, "/api/events?limit=many", 400) == {
            "error": "limit: expected a whole number from 1 to 5000, got 'many'"
        }
        problem = await json_of(http, "/api/changes?since=yesterday", 400)
        assert problem["error"].startswith("since: expected an ISO 8601 date-time")
        assert (await json_of(http, "/api/nothing-here", 404)) == {"error": "Not Found"}

        document = await json_of(http, "/api/openapi.json")
        assert document["openapi"] == "3.1.0"
        assert {"/api/events", "/api/events/{event_id}", "/api/changes"} <= set(document["paths"])
        assert {"EventsPage", "EventDetail", "ChangesPage"} <= set(
            document["components"]["schemas"]
        )
        assert monitor.url is not None


async def test_health_readiness_and_metrics(make_config: ConfigFactory) -> None:
    simulator = Simulator(api_key=API_KEY)
    simulator.set("E1", A, RN)
    async with running(make_config, simulator) as (_, http):
        assert await json_of(http, "/healthz") == {"status": "alive"}

        async def ready() -> bool:
            async with http.get("/readyz") as response:
                return response.status == 200

        await eventually(ready)
        assert Readiness.model_validate(await json_of(http, "/readyz")).reasons == []

        async def baseline() -> bool:
            event = (await json_of(http, "/api/events/E1"))["event"]
            return bool(event["status"] == "TICKETS_AVAILABLE")

        await eventually(baseline)
        simulator.set("E1", F)

        async def scraped() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
            async with http.get("/metrics") as response:
                assert response.status == 200
                text = await response.text()
            samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    labels = tuple(sorted(sample.labels.items()))
                    samples.setdefault(sample.name, {})[labels] = sample.value
            return samples

        async def change_delivered() -> bool:
            figures = await scraped()
            delivered = (("notifier", "console"), ("outcome", "delivered"))
            return figures.get("inventory_monitor_deliveries_total", {}).get(delivered, 0) >= 1

        await eventually(change_delivered)
        figures = await scraped()
        assert figures["inventory_monitor_polls_total"][(("outcome", "ok"),)] >= 2
        assert figures["inventory_monitor_observations_total"][(("outcome", "unchanged"),)] >= 1
        assert figures["inventory_monitor_upstream_request_seconds_count"][()] >= 2
        assert (
            figures["inventory_monitor_changes_total"][
                (("field", "status"), ("state", "FEW_TICKETS_LEFT"))
            ]
            == 1
        )
        assert figures["inventory_monitor_last_successful_poll_timestamp_seconds"][()] > 0
        assert figures["inventory_monitor_watched_events"][()] == 3
        assert figures["inventory_monitor_outbox_pending"][()] == 0
        assert figures["inventory_monitor_upstream_health"][(("health", "ok"),)] == 1
        assert figures["inventory_monitor_quota_remaining"][()] == -1


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        ({"api_key": "another-key"}, "invalid_api_key"),
        ({"quota": 0}, "quota_exhausted"),
        ({"fault_rate": 1.0}, "upstream_degraded"),
    ],
)
async def test_readiness_names_what_is_wrong_upstream(
    make_config: ConfigFactory, limits: dict[str, Any], reason: str
) -> None:
    simulator = Simulator(api_key=limits.get("api_key", API_KEY), quota=limits.get("quota"))
    simulator.fault_rate = limits.get("fault_rate", 0.0)
    async with running(make_config, simulator, polling={"retry": {"initial": "50ms"}}) as (
        _,
        http,
    ):

        async def refused() -> bool:
            async with http.get("/readyz") as response:
                return response.status == 503 and reason in (await response.json())["reasons"]

        await eventually(refused)
        answer = Readiness.model_validate(await json_of(http, "/readyz", 503))
        assert (answer.status, answer.reasons) == ("not_ready", [reason])


async def test_readiness_fails_while_the_database_refuses_every_poll(
    make_config: ConfigFactory,
) -> None:
    """The database still answers reads, and the upstream answers, but no poll is kept."""
    simulator = on_sale("E1", "E2", "E3")
    async with running(make_config, simulator, polling={"interval": "1s"}) as (monitor, http):
        assert monitor.context is not None
        monitor.context.started_at -= 3600  # past the start-up grace
        await eventually(lambda: simulator.requests >= 1, what="the first poll")
        await json_of(http, "/readyz", 200)
        refuse = text(
            "CREATE TRIGGER refuse BEFORE UPDATE ON batches "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )
        async with monitor.parts.stores.repository.engine.begin() as connection:
            await connection.execute(refuse)

        async def refused() -> bool:
            async with http.get("/readyz") as response:
                return response.status == 503

        await eventually(refused, within=10, what="three refused cycles")
        answer = Readiness.model_validate(await json_of(http, "/readyz", 503))
        assert answer.reasons == ["storage_failing"]
        async with monitor.parts.stores.repository.engine.begin() as connection:
            await connection.execute(text("DROP TRIGGER refuse"))
        await eventually(
            lambda: monitor.parts.ticker.storage_failures == 0, within=10, what="a cycle kept"
        )
        await json_of(http, "/readyz", 200)


async def test_readiness_says_when_the_database_is_unavailable(
    make_config: ConfigFactory,
) -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    context = context_of(make_config(), engine)
    async with TestServer(build_app(context)) as server, aiohttp.ClientSession() as http:
        answer = await json_of(http, str(server.make_url("/readyz")), 503)
    await engine.dispose()
    assert answer["reasons"] == ["database_unavailable"]


async def test_a_stopped_scheduler_fails_liveness_and_readiness(
    make_config: ConfigFactory, engine: AsyncEngine
) -> None:
    context = context_of(make_config(), engine, polling=lambda: False)
    async with TestServer(build_app(context)) as server, aiohttp.ClientSession() as http:
        assert await json_of(http, str(server.make_url("/healthz")), 503) == {
            "status": "not polling"
        }
        answer = await json_of(http, str(server.make_url("/readyz")), 503)
    assert answer["reasons"] == ["scheduler_stalled"]


async def test_a_token_guards_everything_but_liveness(make_config: ConfigFactory) -> None:
    simulator = Simulator(api_key=API_KEY)
    async with running(make_config, simulator, server={"port": 0, "token": TOKEN}) as (_, http):
        assert (await json_of(http, "/healthz"))["status"] == "alive"
        for path in ("/readyz", "/metrics", "/api/events", "/api/openapi.json"):
            async with http.get(path) as response:
                assert response.status == 401, path
        for path in ("/", "/events/E1"):
            async with http.get(path, allow_redirects=False) as response:
                assert response.status == 303, "a browser is shown the sign-in page"
                assert response.headers["Location"] == "/signin"
        async with http.get("/api/events", headers={"Authorization": "Bearer wrong"}) as answer:
            assert answer.status == 401
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with http.get("/api/events", headers=headers) as response:
            assert response.status == 200
        async with http.get(f"/?token={TOKEN}", allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/"
            cookie = response.cookies["monitor_session"]
            assert cookie["httponly"]
            assert cookie["samesite"] == "Strict"
            assert TOKEN not in cookie.value, "the cookie never holds the token"
        async with http.get("/", cookies={"monitor_session": cookie.value}) as response:
            assert response.status == 200
        async with http.get(
            "/", cookies={"monitor_session": TOKEN}, allow_redirects=False
        ) as response:
            assert response.status == 303, "the token itself is no session: sign in"
        latin1 = {"Authorization": "Bearer caf\xe9", "Cookie": "monitor_session=caf\xe9"}
        async with http.get("/api/events", headers=latin1) as response:
            assert response.status == 401


@pytest.mark.unit
def test_a_server_reachable_from_other_machines_needs_a_token(
    make_config: ConfigFactory,
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(server={"host": "0.0.0.0"})  # noqa: S104
    assert "server.host: '0.0.0.0' is reachable from other machines: set server.token" in str(
        caught.value
    )
    assert make_config(server={"host": "0.0.0.0", "token": TOKEN}).server.token  # noqa: S104


async def test_the_health_command_answers_for_dockers_healthcheck(
    make_config: ConfigFactory, tmp_path: Path
) -> None:
    port = free_port()
    path = tmp_path / "monitor.yaml"
    simulator = Simulator(api_key=API_KEY)
    async with serve(simulator) as upstream:
        path.write_text(
            yaml.safe_dump(
                {
                    "ticketmaster": {"base_url": upstream, "api_key": API_KEY},
                    "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"},
                    "server": {"port": port},
                    "events": [{"id": "E1"}],
                }
            )
        )
        async with Monitor(load_config(path)):
            code, _, err = await run_cli("health", "--config", str(path))
            assert code == 0, err
    code, _, err = await run_cli("health", "--config", str(path))
    assert code == 1
    assert f"http://127.0.0.1:{port}/healthz" in err


async def test_the_dashboard_pages_and_filters_thousands_of_events(
    make_config: ConfigFactory, tmp_path: Path
) -> None:
    config = make_config(events=[{"id": f"E{i:04d}", "name": f"Show {i}"} for i in range(5000)])
    engine = create_engine(config.database.url)
    await upgrade(engine)
    repository = Repository(engine)
    await sync_watchlist(repository, config, watchlist(config), time.time())
    context = context_of(config, engine)
    async with TestServer(build_app(context)) as server, aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/?page=3")) as response:
            html = await response.text()
        async with http.get(server.make_url("/?q=show 4999")) as response:
            found = await response.text()
    await engine.dispose()
    assert response.status == 200
    assert html.count("<tr data-event-id=") == 100
    # Without dates, by name: "Show 1", "Show 10", "Show 100", ...
    third = sorted((f"Show {i}", f"E{i:04d}") for i in range(5000))[200:300]
    assert f'data-event-id="{third[0][1]}"' in html
    assert f'data-event-id="{third[-1][1]}"' in html
    assert "Page 3 of 50" in html
    assert "5,000 events watched" in html
    assert found.count("<tr data-event-id=") == 1
    assert 'data-event-id="E4999"' in found


async def test_the_dashboard_lists_the_next_show_first_and_paused_ones_too(
    make_config: ConfigFactory,
) -> None:
    config = make_config(
        events=[{"id": e, "name": n} for e, n in (("E1", "Zed"), ("E2", "Abba"), ("E3", "Mid"))]
    )
    engine = create_engine(config.database.url)
    await upgrade(engine)
    await sync_watchlist(Repository(engine), config, watchlist(config), time.time())
    async with engine.begin() as conn:
        for event_id, days in (("E1", 1), ("E3", 3)):
            await conn.execute(
                update(event_details)
                .where(event_details.c.event_id == event_id)
                .values(starts_at=time.time() + days * 86400)
            )
    await Watches(engine).change("E3", time.time(), "test", "pause", None, paused=True)
    await sync_watchlist(
        Repository(engine),
        config,
        watchlist(config.model_copy(update={"events": config.events[:2]})),
        time.time(),
    )
    page = await Reads(engine).events_page(with_paused=True, by_date=True)
    watched = await Reads(engine).events_page()
    await engine.dispose()
    assert [(row.event_id, row.paused) for row in page.rows] == [
        ("E1", False),  # tomorrow
        ("E3", True),  # in three days, paused: listed all the same
        ("E2", False),  # no date known: last
    ]
    assert [row.event_id for row in watched.rows] == ["E1", "E2"], "the API's: watched alone"


async def test_replicas_on_one_database_share_the_request_rate(
    make_config: ConfigFactory,
) -> None:
    simulator = Simulator(api_key=API_KEY)
    async with serve(simulator) as upstream:
        config = make_config(ticketmaster={"base_url": upstream}, server={"enabled": False})
        full = 5 * PACING
        async with Monitor(config, housekeeping_every=0.05) as first:
            assert first.parts.limiter.rate == pytest.approx(full)
            async with Monitor(config, housekeeping_every=0.05) as second:
                assert second.parts.limiter.rate == pytest.approx(full / 2)

                async def halved() -> bool:
                    return bool(first.parts.limiter.rate == pytest.approx(full / 2))

                await eventually(halved)

            async def whole_again() -> bool:
                return bool(first.parts.limiter.rate == pytest.approx(full))

            await eventually(whole_again)


async def test_reads_and_readiness_never_wait_for_a_writer(make_config: ConfigFactory) -> None:
    """On SQLite a writer holds the write lock; WAL readers (a deferred BEGIN) run beside it.
    Were reads to take the write lock, each would queue for the 30 s busy timeout."""
    config = make_config()
    engine = create_engine(config.database.url)
    await upgrade(engine)
    await sync_watchlist(Repository(engine), config, watchlist(config), time.time())
    context = context_of(config, engine)
    async with engine.begin() as writer:
        await writer.execute(update(events).values(name="held"))
        async with TestServer(build_app(context)) as server, aiohttp.ClientSession() as http:
            reads = asyncio.gather(
                json_of(http, str(server.make_url("/api/events"))),
                json_of(http, str(server.make_url("/readyz"))),
                Repository(engine).load_upstream(),
            )
            page, ready, _ = await asyncio.wait_for(reads, 5.0)
    await engine.dispose()
    assert [e["id"] for e in page["events"]] == ["EV1"]
    assert ready["reasons"] == []


async def test_the_dashboard_says_when_the_quota_paces_requests(
    make_config: ConfigFactory, engine: AsyncEngine
) -> None:
    context = context_of(make_config(), engine)
    await upgrade(engine)
    now = time.time()
    context.upstream.observe_quota(5000, 30, now + 60)
    async with TestServer(build_app(context)) as server, aiohttp.ClientSession() as http:
        async with http.get(server.make_url("/")) as response:
            page = await response.text()
        assert "one request every 2s, so that the quota lasts until its reset" in page
        context.upstream.observe_quota(5000, 4000, now + 60)
        async with http.get(server.make_url("/")) as response:
            assert "one request every" not in await response.text(), "the rate paces, not it"


HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
PROBES = {"/healthz", "/readyz", "/metrics"}
"""Besides `/api/`: what machines read."""


async def test_the_openapi_document_names_every_api_route_and_no_other(
    make_config: ConfigFactory,
) -> None:
    config = make_config(server={"token": "a-token-of-16-chars"})
    engine = create_engine(config.database.url)
    await upgrade(engine)
    app = build_app(context_of(config, engine))
    routes = {
        (route.method, resource.canonical)
        for resource in app.router.resources()
        for route in resource
        if route.method in HTTP_METHODS
        and (resource.canonical.startswith("/api/") or resource.canonical in PROBES)
        and resource.canonical != "/api/openapi.json"  # the document itself
    }
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        headers = {"Authorization": "Bearer a-token-of-16-chars"}
        async with http.get(server.make_url("/api/openapi.json"), headers=headers) as response:
            document = await response.json()
    await engine.dispose()
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method.upper() in HTTP_METHODS
    }
    assert routes - documented == set(), "routes the document does not describe"
    assert documented - routes == set(), "described routes that do not exist"
    assert len(routes) > 30
