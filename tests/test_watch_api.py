"""The JSON API's writes, in a running daemon polling the simulator: every endpoint with good
and bad input, the token rules, and replicas following a write within a tick."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from monitor.app import Monitor
from monitor.devtools.simulator import Simulator, serve
from monitor.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Refused,
    Unauthorized,
    Unsupported,
)
from monitor.models import Outcome
from monitor.server.api import Problem
from monitor.server.watch_routes import WatchesPage, WatchOut
from monitor.server.writes import MAX_BODY, status_of
from monitor.store.outbox import Attempt, Outbox
from tests.conftest import API_KEY, ConfigFactory, change_with_delivery
from tests.running import in_process
from tests.support import RN, A, eventually

TOKEN = "api-write-token-7c1d"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LEGACY = "1F006248A0A61B2C"
LINK = f"https://www.ticketmaster.co.uk/oasis-tickets/event/{LEGACY}?src=share"


@asynccontextmanager
async def daemon(
    make_config: ConfigFactory, simulator: Simulator, *, token: str | None = TOKEN, **sections: Any
) -> AsyncIterator[tuple[Monitor, aiohttp.ClientSession]]:
    async with in_process(
        make_config,
        simulator,
        token=token,
        notifiers={"fans": {"type": "log"}, "ops": {"type": "log"}},
        events=[{"id": "E1", "name": "Blur"}],
        **sections,
    ) as running:
        yield running.monitor, running.http


async def call(
    http: aiohttp.ClientSession, method: str, path: str, status: int, **kwargs: Any
) -> Any:
    async with http.request(method, path, **kwargs) as response:
        text = await response.text()
        assert response.status == status, text
        if status == 204:
            assert text == ""
            return None
        assert response.content_type == "application/json"
        return await response.json()


async def test_every_watch_endpoint_with_good_input(make_config: ConfigFactory) -> None:
    simulator = Simulator(api_key=API_KEY, markets={LEGACY: "GB"})
    simulator.set(LEGACY, A, RN)
    async with daemon(make_config, simulator) as (monitor, http):
        added = await call(
            http,
            "POST",
            "/api/watches",
            201,
            json={"url": LINK, "name": "Oasis", "notify": ["fans"]},
        )
        WatchOut.model_validate(added)
        assert (added["id"], added["origin"], added["name"]) == (LEGACY, "api", "Oasis")
        assert added["settings"]["url"] == LINK.split("?", maxsplit=1)[0], "the link as rebuilt"
        await eventually(lambda: LEGACY in simulator.asked, what="the added watch polled")
        assert simulator.kinds[True, "UK"] >= 1, "on the legacy endpoint, for the UK"

        listed = WatchesPage.model_validate(await call(http, "GET", "/api/watches", 200))
        assert [(w.id, w.origin) for w in listed.watches] == [(LEGACY, "api"), ("E1", "config")]
        one = await call(http, "GET", f"/api/watches/{LEGACY}", 200)
        assert one == added

        changed = await call(
            http, "PATCH", f"/api/watches/{LEGACY}", 200, json={"name": "Oasis, night 2"}
        )
        assert changed["name"] == "Oasis, night 2"
        assert changed["settings"]["notify"] == ["fans"], "what was not given stays"
        unset = await call(http, "PATCH", f"/api/watches/{LEGACY}", 200, json={"notify": None})
        assert "notify" not in unset["settings"], "a null removes a setting"
        moved = await call(http, "PATCH", f"/api/watches/{LEGACY}", 409, json={"region": "US"})
        assert moved == {"error": "this watch's link says its region", "field": "region"}

        paused = await call(http, "POST", "/api/watches/E1/pause", 200)
        assert paused["paused"] is True, "a config watch can be paused"
        assert "E1" not in monitor.parts.poller.watchlist, (
            "and leaves this replica's watchlist at once"
        )
        resumed = await call(http, "POST", "/api/watches/E1/resume", 200)
        assert resumed["paused"] is False
        assert "E1" in monitor.parts.poller.watchlist

        before = time.time()
        snoozed = await call(http, "POST", "/api/watches/E1/snooze", 200, json={"for": "2h"})
        assert snoozed["snoozed_until"] > time.strftime(
            "%Y-%m-%dT%H:%M", time.gmtime(before + 7100)
        )
        until = await call(
            http, "POST", "/api/watches/E1/snooze", 200, json={"until": "2099-01-01T07:00:00Z"}
        )
        assert until["snoozed_until"] == "2099-01-01T07:00:00Z"
        for ended in ({"for": "0s"}, {"until": "2001-01-01T00:00:00Z"}):
            woken = await call(http, "POST", "/api/watches/E1/snooze", 200, json=ended)
            assert woken["snoozed_until"] is None, "a snooze that ends now ends the one in force"
            await call(http, "POST", "/api/watches/E1/snooze", 200, json={"for": "2h"})

        assert await call(http, "DELETE", f"/api/watches/{LEGACY}", 204) is None
        await call(http, "GET", f"/api/watches/{LEGACY}", 404)
        assert LEGACY not in monitor.parts.poller.watchlist
        history = await call(http, "GET", f"/api/events/{LEGACY}", 200)
        assert history["event"]["id"] == LEGACY, "its history stays"

        # A removal undone: watched again, as it was.
        restored = await call(http, "POST", f"/api/watches/{LEGACY}/restore", 200)
        assert (restored["name"], restored["settings"]) == (changed["name"], unset["settings"])
        assert LEGACY in monitor.parts.poller.watchlist
        await call(http, "POST", f"/api/watches/{LEGACY}/restore", 409)
        await call(http, "POST", "/api/watches/E1/restore", 409)
        assert await call(http, "DELETE", f"/api/watches/{LEGACY}", 204) is None

        audit = await monitor.context.watching.audit("E1")  # type: ignore[union-attr]
        assert [(a.who, a.action) for a in audit] == [
            ("api", "pause"),
            ("api", "resume"),
            *[("api", "snooze")] * 6,
        ]
        restores = [a.action for a in await monitor.context.watching.audit(LEGACY)]  # type: ignore[union-attr]
        assert restores[-3:] == ["remove", "restore", "remove"]


BAD_ADDS = [
    ({"id": "E2", "notify": ["pager"]}, 400, "notify", "no notifier is named 'pager'"),
    ({"id": "not an id!"}, 400, "id", "event ID"),
    ({"url": "https://example.com/event/E2"}, 400, None, "not a Ticketmaster site"),
    ({"url": "https://www.ticketmaster.fr/event/E2"}, 400, None, "UNKNOWN"),
    ({"url": "https://evil.example\\@www.ticketmaster.com/x/event/E2"}, 400, None, "backslash"),
    ({"url": "https://u:p@www.ticketmaster.com/x/event/E2"}, 400, None, "user name or password"),
    ({"url": "https://www.ticketmaster.com:99999/x/event/E2"}, 400, None, "not a web link"),
    ({"id": "E2", "interval": "30"}, 400, "interval", "invalid duration"),
    ({"id": "E2", "colour": "red"}, 400, "colour", "unknown field 'colour'"),
    ({"id": "E2", "priority": "5"}, 400, "priority", "valid integer"),
    ({"id": "E2", "url": LINK}, 400, None, "not both"),
    ({"url": LINK, "region": "GB"}, 400, "region", "the link says its region"),
    ({"name": "no event"}, 400, None, "give the event"),
    ({"id": "E2", "when": [{"field": "resale_status", "to": ["FEW_TICKETS_LEFT"]}]}, 400,
     "when.0.to", "resale has no such state"),
    ({"id": "E1"}, 409, "id", "watched already"),
    ({"id": "E2", "interval": "1ms"}, 400, "interval", "at least 1s, got 1ms"),
    ({"id": "E2", "until": "0001-01-01T00:00:00Z"}, 400, "until", "from 2000 to 2100"),
    ({"id": "E2", "name": "a\u0000b"}, 400, "name", "control characters"),
    ({"id": "E2", "name": "a\u001bb"}, 400, "name", "control characters"),
    ({"id": "E2", "tags": [str(n) for n in range(21)]}, 400, "tags", "at most 20 items"),
    ({"id": "E2", "tags": ["t" * 41]}, 400, "tags.0", "at most 40 characters"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "field", "says"), BAD_ADDS)
async def test_a_bad_add_names_the_field_and_changes_nothing(
    make_config: ConfigFactory, body: dict[str, Any], status: int, field: str | None, says: str
) -> None:
    async with daemon(make_config, Simulator(api_key=API_KEY)) as (monitor, http):
        problem = Problem.model_validate(
            await call(http, "POST", "/api/watches", status, json=body)
        )
        assert problem.field == field
        assert says in problem.error
        listed = await call(http, "GET", "/api/watches", 200)
        assert [w["id"] for w in listed["watches"]] == ["E1"]
        assert list(monitor.parts.poller.watchlist) == ["E1"]


async def test_bad_requests_are_problems_not_errors(make_config: ConfigFactory) -> None:
    async with daemon(make_config, Simulator(api_key=API_KEY)) as (_, http):
        huge = {"id": "E2", "name": "x" * (MAX_BODY + 1)}
        problem = await call(http, "POST", "/api/watches", 400, json=huge)
        assert problem["error"] == "the request body is over 64 KB"
        bad_json = {"data": b"{", "headers": {"Content-Type": "application/json"}}
        assert "not JSON" in (await call(http, "POST", "/api/watches", 400, **bad_json))["error"]
        assert "a JSON object" in (await call(http, "POST", "/api/watches", 400, json=[1]))["error"]
        doubled = {
            "data": b'{"id": "E2", "id": "E3"}',
            "headers": {"Content-Type": "application/json"},
        }
        problem = await call(http, "POST", "/api/watches", 400, **doubled)
        assert (problem["error"], problem["field"]) == ("the key 'id' is given twice", "id")
        form = await call(http, "POST", "/api/watches", 415, data={"id": "E2"})
        assert form["field"] == "Content-Type", "a form, which any site can send, is refused"
        await call(http, "POST", "/api/watches/E1/pause", 415, data="x")

        removal = await call(http, "DELETE", "/api/watches/E1", 409)
        assert "remove it from the config file" in removal["error"]
        assert (
            "change it there"
            in (await call(http, "PATCH", "/api/watches/E1", 409, json={"name": "x"}))["error"]
        )
        await call(http, "POST", "/api/watches", 201, json={"id": "E2"})
        moved = await call(http, "PATCH", "/api/watches/E2", 400, json={"id": "E3"})
        assert moved["field"] == "id"
        bad_patch = await call(http, "PATCH", "/api/watches/E2", 400, json={"interval": 5})
        assert bad_patch["field"] == "interval"

        beyond = {"until": "2101-01-01T00:00:00Z"}
        assert (await call(http, "POST", "/api/watches/E1/snooze", 400, json=beyond))["field"]
        both = {"for": "1h", "until": "2099-01-01T00:00:00Z"}
        assert (await call(http, "POST", "/api/watches/E1/snooze", 400, json=both))["field"]
        assert (await call(http, "POST", "/api/watches/E1/snooze", 400, json={"for": "1"}))[
            "field"
        ] == "for"
        for method, path in (
            ("POST", "/api/watches/E9/pause"),
            ("POST", "/api/watches/E9/resume"),
            ("DELETE", "/api/watches/E9"),
            ("PATCH", "/api/watches/E9"),
            ("POST", "/api/deliveries/nope/retry"),
        ):
            await call(http, method, path, 404, json={} if method == "PATCH" else None)


async def test_writes_need_a_token_even_on_loopback(make_config: ConfigFactory) -> None:
    async with daemon(make_config, Simulator(api_key=API_KEY), token=None) as (monitor, http):
        listed = await call(http, "GET", "/api/watches", 200)
        assert [w["id"] for w in listed["watches"]] == ["E1"], "reading needs no token"
        refused = await call(http, "POST", "/api/watches", 403, json={"id": "E2"})
        assert "server.token" in refused["error"]
        await call(http, "POST", "/api/watches/E1/pause", 403)
        await call(http, "DELETE", "/api/watches/E1", 403)
        assert list(monitor.parts.poller.watchlist) == ["E1"]
        async with http.get("/") as page:
            html = await page.text()
        assert 'action="/watches"' not in html, "no write controls"
        assert "set <code>server.token</code>" in html
        async with http.post("/watches", data={"event": "E2"}) as form:
            assert form.status == 403


async def test_a_missing_or_wrong_token_is_a_401(make_config: ConfigFactory) -> None:
    async with daemon(make_config, Simulator(api_key=API_KEY)) as (monitor, _):
        assert monitor.url is not None
        async with aiohttp.ClientSession(monitor.url) as anonymous:
            await call(anonymous, "POST", "/api/watches", 401, json={"id": "E2"})
            wrong = {"Authorization": f"Bearer {TOKEN[:-1]}x"}
            await call(anonymous, "POST", "/api/watches", 401, json={"id": "E2"}, headers=wrong)
            await call(anonymous, "DELETE", "/api/watches/E1", 401, headers=wrong)
        assert list(monitor.parts.poller.watchlist) == ["E1"]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_watch_added_on_one_replica_is_polled_once_by_the_cluster(
    make_config: ConfigFactory, database_url: str
) -> None:
    """Replica A takes the write and polls the new watch within its next tick; replica B
    follows within its own, and the two never both poll it."""
    simulator = Simulator(api_key=API_KEY)
    simulator.set("E9", A, RN)
    interval = 2.0
    async with serve(simulator) as upstream:
        config = make_config(
            ticketmaster={"base_url": upstream, "requests_per_second": 100},
            database={"url": database_url},
            polling={"interval": f"{interval}s"},
            server={"port": 0, "token": TOKEN},
        )
        async with (
            Monitor(config, follow_every=0.5) as first,
            Monitor(config, follow_every=0.5) as second,
            aiohttp.ClientSession(first.url, headers=AUTH) as http,
        ):
            await call(http, "POST", "/api/watches", 201, json={"id": "E9"})
            assert "E9" in first.parts.poller.watchlist, "replica A at once"
            await eventually(lambda: "E9" in simulator.asked, what="the first poll")
            first_poll = time.time()
            await eventually(
                lambda: "E9" in second.parts.poller.watchlist, what="replica B following"
            )
            polls = simulator.times_asked["E9"]
            elapsed = time.time() - first_poll
            # The first poll is noticed up to a step of `eventually` late, and the next keeps
            # to the slot the first was due in: up to one more poll per interval begun.
            most = 1 + math.ceil(elapsed / interval)
            assert 1 <= polls <= most, "once an interval, by the cluster"


async def test_a_dead_delivery_is_retried_through_the_api(make_config: ConfigFactory) -> None:
    async with daemon(make_config, Simulator(api_key=API_KEY)) as (monitor, http):
        # Not due before it is dead: the dispatcher must not send it first.
        later = time.time() + 3600
        await monitor.parts.stores.repository.save_poll(change_with_delivery(1, at=later))
        outbox = Outbox(monitor.parts.stores.repository.engine)
        await outbox.record_attempts([Attempt("d1", 3.0, Outcome.DEAD, 410, "HTTP 410 (gone)")])
        assert await call(http, "POST", "/api/deliveries/d1/retry", 200) == {"retried": "d1"}

        async def delivered() -> bool:
            (row,) = await outbox.list_deliveries()
            return row.state == "delivered"

        await eventually(delivered, what="the delivery sent again")
        await call(http, "POST", "/api/deliveries/d1/retry", 404)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (Invalid, 400),
        (Unauthorized, 401),
        (Forbidden, 403),
        (NotFound, 404),
        (Conflict, 409),
        (Unsupported, 415),
    ],
)
def test_the_http_layer_says_each_kind_of_refusal_with_its_status(
    kind: type[Refused], status: int
) -> None:
    """The services say what went wrong; only the HTTP layer knows status codes."""
    assert status_of(kind("no")) == status
