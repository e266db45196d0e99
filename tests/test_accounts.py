"""One watcher that a group of fans shares: each user hears of their own shows alone, on
their own channels, and an event many follow is polled once for all of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from icalendar import Calendar
from sqlalchemy import select
from standardwebhooks import Webhook

from monitor.app import Monitor
from monitor.devtools.catalog import discovery_event
from monitor.devtools.simulator import Simulator, serve
from monitor.models import ResaleStatus, Status
from monitor.server.account_routes import CalendarOut, ChannelOut, DeliveriesOut, MeOut
from monitor.server.subscription_routes import SubscriptionOut, SubscriptionsOut
from monitor.server.user_routes import NewUserOut, UsersOut
from monitor.store.engine import reader
from monitor.store.tables import deliveries, events
from tests.conftest import API_KEY, ConfigFactory
from tests.e2e import Receiver, receiver
from tests.running import in_process
from tests.support import all_sent, eventually

TOKEN = "accounts-operator-token-7c1d"
OPERATOR = {"Authorization": f"Bearer {TOKEN}"}
SHARED, ALICE_ONLY, BOB_ONLY, SOLO = "SHARED1", "ALICE01", "BOB0001", "SOLO001"
LINK = "https://www.ticketmaster.ie/oasis-live-25-tickets/event/1F006248A0A61B2C"
A, F, S = Status.TICKETS_AVAILABLE, Status.FEW_TICKETS_LEFT, Status.TICKETS_NOT_AVAILABLE
NO_RESALE = ResaleStatus.TICKETS_NOT_AVAILABLE


@dataclass
class Shared:
    monitor: Monitor
    simulator: Simulator
    http: aiohttp.ClientSession

    async def user(self, name: str, role: str = "member") -> dict[str, str]:
        """A new user, and the headers that carry their token."""
        async with self.http.post(
            "/api/users", json={"name": name, "role": role}, headers=OPERATOR
        ) as response:
            assert response.status == 201, await response.text()
            created = NewUserOut.model_validate(await response.json())
        return {"Authorization": f"Bearer {created.token}"}

    async def call(
        self, method: str, path: str, auth: dict[str, str], body: Any = None
    ) -> tuple[int, Any]:
        async with self.http.request(method, path, json=body, headers=auth) as response:
            answer = await response.json() if response.content_type == "application/json" else None
            return response.status, answer


@asynccontextmanager
async def shared(make_config: ConfigFactory, **users: Any) -> AsyncIterator[Shared]:
    simulator = Simulator(api_key=API_KEY)
    for event_id in (SHARED, ALICE_ONLY, BOB_ONLY, SOLO):
        simulator.set(event_id, S, NO_RESALE)
    async with in_process(
        make_config,
        simulator,
        token=TOKEN,
        as_operator=False,
        follow_every=0.2,
        users={"min_interval": "1s", **users},
        events=[{"id": SOLO}],
    ) as running:
        yield Shared(running.monitor, simulator, running.http)


async def _hook(s: Shared, auth: dict[str, str], url: str, name: str = "hook") -> str:
    status, answer = await s.call(
        "POST", "/api/me/channels", auth, {"name": name, "type": "webhook", "url": url}
    )
    assert status == 201, answer
    channel = ChannelOut.model_validate(answer)
    assert channel.secret is not None, "a webhook's secret comes with the answer that made it"
    return channel.secret


async def _subscribe(s: Shared, auth: dict[str, str], **body: Any) -> SubscriptionOut:
    status, answer = await s.call("POST", "/api/me/subscriptions", auth, body)
    assert status == 201, answer
    return SubscriptionOut.model_validate(answer)


def _about(hook: Receiver, event_id: str) -> list[dict[str, Any]]:
    return [b["data"] for b in hook.bodies() if b["data"]["event_id"] == event_id]


async def test_two_fans_each_hear_their_own_shows_and_a_shared_one_is_polled_once(
    make_config: ConfigFactory,
) -> None:
    async with (
        receiver() as alice_hook,
        receiver() as bob_hook,
        shared(make_config, allow_private_targets=True) as s,
    ):
        alice, bob = await s.user("alice"), await s.user("bob")
        secret = await _hook(s, alice, alice_hook.url)
        await _hook(s, bob, bob_hook.url)
        await _subscribe(s, alice, id=SHARED)
        await _subscribe(s, alice, id=ALICE_ONLY, when=["TICKETS_AVAILABLE"])
        await _subscribe(s, bob, id=SHARED)
        await _subscribe(s, bob, id=BOB_ONLY)
        polled = (SHARED, ALICE_ONLY, BOB_ONLY, SOLO)
        await eventually(
            lambda: all(s.simulator.times_asked[e] >= 2 for e in polled), what="baselines"
        )

        # One row, in one batch, however many follow it; and asked as often as any event.
        async with reader(s.monitor.parts.stores.repository.engine).connect() as conn:
            homes = (await conn.execute(select(events.c.event_id, events.c.batch_id))).all()
        assert sorted(e for e, batch in homes if batch is not None) == sorted(polled)
        before = dict(s.simulator.times_asked)
        await eventually(lambda: s.simulator.times_asked[SOLO] >= before[SOLO] + 3, what="polls")
        shared_polls = s.simulator.times_asked[SHARED] - before[SHARED]
        solo_polls = s.simulator.times_asked[SOLO] - before[SOLO]
        assert abs(shared_polls - solo_polls) <= 1, "followed by two, polled as one"

        s.simulator.set(SHARED, F)
        s.simulator.set(ALICE_ONLY, F)  # not what alice's `when` asks for
        s.simulator.set(BOB_ONLY, A)
        await eventually(
            lambda: bool(_about(alice_hook, SHARED) and _about(bob_hook, BOB_ONLY)),
            what="deliveries",
        )
        s.simulator.set(ALICE_ONLY, A)  # now it is
        await eventually(lambda: bool(_about(alice_hook, ALICE_ONLY)), what="alice's event")
        await all_sent(s.monitor.parts.stores.engine)
        assert [d["subscriber"] for d in _about(alice_hook, SHARED)] == ["alice"]
        assert [d["subscriber"] for d in _about(bob_hook, SHARED)] == ["bob"]
        assert [d["current"]["status"] for d in _about(alice_hook, ALICE_ONLY)] == [A.value]
        assert not _about(alice_hook, BOB_ONLY)
        assert not _about(bob_hook, ALICE_ONLY)
        headers, body = next((h, b) for h, b in alice_hook.requests if b"SHARED1" in b)
        Webhook(secret).verify(body, headers)  # signed with alice's own secret

        # Bob's snooze holds bob's messages alone.
        status, _ = await s.call(
            "POST", f"/api/me/subscriptions/{SHARED}/snooze", bob, {"for": "1h"}
        )
        assert status == 200
        s.simulator.set(SHARED, A)
        await eventually(lambda: len(_about(alice_hook, SHARED)) == 2, what="alice told")
        await all_sent(s.monitor.parts.stores.engine, held={"@bob/hook"})
        assert len(_about(bob_hook, SHARED)) == 1, "bob's snooze holds his message"
        status, _ = await s.call(
            "POST", f"/api/me/subscriptions/{SHARED}/snooze", bob, {"for": "0s"}
        )
        assert status == 200
        await eventually(lambda: len(_about(bob_hook, SHARED)) == 2, what="bob told at the end")
        assert _about(bob_hook, SHARED)[-1]["current"]["status"] == A.value

        status, listed = await s.call("GET", "/api/me/subscriptions", alice)
        page = SubscriptionsOut.model_validate(listed)
        assert [(x.id, x.status) for x in page.subscriptions] == [
            (ALICE_ONLY, A.value),
            (SHARED, A.value),
        ]


async def test_the_last_follower_going_stops_polling_and_the_history_stays(
    make_config: ConfigFactory,
) -> None:
    async with shared(make_config) as s:
        alice, bob = await s.user("alice"), await s.user("bob")
        await _subscribe(s, alice, id=SHARED)
        await _subscribe(s, bob, id=SHARED, interval="2s")
        await eventually(lambda: SHARED in s.monitor.parts.poller.watchlist, what="followed")
        assert s.monitor.parts.poller.watchlist[SHARED].interval == 1.0, "the shortest asked for"
        assert s.monitor.parts.poller.watchlist[SHARED].targets == (), "no channels, nobody to tell"

        status, _ = await s.call("POST", f"/api/me/subscriptions/{SHARED}/pause", alice)
        assert status == 200
        assert s.monitor.parts.poller.watchlist[SHARED].interval == 2.0, "alice's pause is hers"
        assert (await s.call("DELETE", f"/api/me/subscriptions/{SHARED}", bob))[0] == 204
        assert SHARED not in s.monitor.parts.poller.watchlist, "nobody listens: not polled"
        assert (await s.call("DELETE", f"/api/me/subscriptions/{SHARED}", alice))[0] == 204
        async with reader(s.monitor.parts.stores.repository.engine).connect() as conn:
            row = (await conn.execute(select(events).where(events.c.event_id == SHARED))).one()
        assert row.batch_id is None, "not polled"
        assert row.status is not None, "its history stays"


async def test_a_member_reaches_only_their_own_things(make_config: ConfigFactory) -> None:
    async with receiver() as hook, shared(make_config, allow_private_targets=True) as s:
        alice, bob = await s.user("alice"), await s.user("bob")
        await _hook(s, alice, hook.url, "phone")
        await _subscribe(s, alice, id=SHARED)
        theirs = [
            ("GET", f"/api/me/subscriptions/{SHARED}", None),
            ("PATCH", f"/api/me/subscriptions/{SHARED}", {"when": ["TICKETS_AVAILABLE"]}),
            ("DELETE", f"/api/me/subscriptions/{SHARED}", None),
            ("POST", f"/api/me/subscriptions/{SHARED}/pause", None),
            ("POST", f"/api/me/subscriptions/{SHARED}/resume", None),
            ("POST", f"/api/me/subscriptions/{SHARED}/snooze", {"for": "1h"}),
            ("DELETE", "/api/me/channels/phone", None),
            ("POST", "/api/me/channels/phone/test", None),
        ]
        for method, path, body in theirs:
            status, answer = await s.call(method, path, bob, body)
            assert status == 404, (method, path, answer)
        status, answer = await s.call(
            "POST", "/api/me/subscriptions", bob, {"id": SHARED, "notify": ["phone"]}
        )
        assert (status, answer["field"]) == (409, "notify"), "alice's channel is not bob's"
        for path in ("/api/me/subscriptions", "/api/me/channels"):
            status, answer = await s.call("GET", path, bob)
            assert status == 200
            assert not next(iter(answer.values())), path

        admin_only = [
            ("GET", "/api/users", None),
            ("POST", "/api/users", {"name": "mallory"}),
            ("DELETE", "/api/users/alice", None),
            ("GET", "/api/events", None),
            ("GET", f"/api/events/{SHARED}", None),
            ("GET", "/api/changes", None),
            ("GET", "/api/watches", None),
            ("POST", "/api/watches", {"id": "NEW0001"}),
            ("DELETE", f"/api/watches/{SOLO}", None),
            ("POST", "/api/deliveries/x/retry", None),
            ("GET", "/metrics", None),
            ("GET", "/readyz", None),
        ]
        for method, path, body in admin_only:
            status, answer = await s.call(method, path, bob, body)
            assert status == 403, (method, path, answer)
        status, users = await s.call("GET", "/api/users", OPERATOR)
        assert [u.name for u in UsersOut.model_validate(users).users] == ["alice", "bob"]
        status, me = await s.call("GET", "/api/me", bob)
        assert MeOut.model_validate(me) == MeOut(name="bob", role="member")
        status, answer = await s.call("GET", "/api/me/subscriptions", OPERATOR)
        assert status == 403
        assert "no account" in answer["error"]


async def test_an_admin_user_manages_users_and_watches(make_config: ConfigFactory) -> None:
    async with shared(make_config) as s:
        root = await s.user("root", role="admin")
        status, answer = await s.call("POST", "/api/users", root, {"name": "carol"})
        assert status == 201
        assert answer["token"].startswith("imu_")
        status, answer = await s.call("POST", "/api/watches", root, {"id": "NEW0001"})
        assert status == 201, answer
        status, _audit = await s.call("GET", "/api/users", root)
        assert status == 200
        assert (await s.call("DELETE", "/api/users/carol", root))[0] == 204
        assert (await s.call("DELETE", "/api/users/carol", root))[0] == 404


async def test_disabled_users_and_revoked_tokens_are_refused(make_config: ConfigFactory) -> None:
    async with receiver() as hook, shared(make_config, allow_private_targets=True) as s:
        alice = await s.user("alice")
        await _hook(s, alice, hook.url)
        await _subscribe(s, alice, id=SHARED)
        await eventually(lambda: s.simulator.times_asked[SHARED] >= 2, what="a baseline")
        users = s.monitor.context.users if s.monitor.context else None
        assert users is not None
        await users.set_disabled("alice", True)
        assert (await s.call("GET", "/api/me", alice))[0] == 401
        assert SHARED not in s.monitor.parts.poller.watchlist, (
            "a disabled user's shows are not polled"
        )
        async with reader(s.monitor.parts.stores.engine).connect() as conn:
            batch = await conn.scalar(select(events.c.batch_id).where(events.c.event_id == SHARED))
        assert batch is None, "no replica polls a disabled user's shows"
        assert not hook.requests, "a disabled user hears nothing"

        await users.set_disabled("alice", False)
        assert (await s.call("GET", "/api/me", alice))[0] == 200
        fresh = {"Authorization": f"Bearer {await users.new_token('alice')}"}
        assert (await s.call("GET", "/api/me", alice))[0] == 401, "the earlier token is revoked"
        assert (await s.call("GET", "/api/me", fresh))[0] == 200


async def test_limits_answer_409_and_a_members_interval_has_a_floor(
    make_config: ConfigFactory,
) -> None:
    async with shared(make_config, max_subscriptions=1, max_channels=1, min_interval="30s") as s:
        alice = await s.user("alice")
        await _subscribe(s, alice, id=SHARED)
        status, answer = await s.call("POST", "/api/me/subscriptions", alice, {"id": BOB_ONLY})
        assert status == 409
        assert "users.max_subscriptions" in answer["error"]
        status, answer = await s.call("POST", "/api/me/subscriptions", alice, {"id": SHARED})
        assert (status, answer["field"]) == (409, "id"), "followed already"
        status, answer = await s.call(
            "PATCH", f"/api/me/subscriptions/{SHARED}", alice, {"interval": "10s"}
        )
        assert (status, answer["field"]) == (400, "interval")
        url = "ntfy://ntfy.example.org/alice"
        assert (await s.call("POST", "/api/me/channels", alice, {"name": "a", "url": url}))[
            0
        ] == 201
        status, answer = await s.call("POST", "/api/me/channels", alice, {"name": "b", "url": url})
        assert status == 409
        assert "users.max_channels" in answer["error"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8123/api/webhook/x",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/hook",
        "http://[::1]:9/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://metadata.google.internal/computeMetadata/v1/",
    ],
)
async def test_a_members_webhook_may_not_reach_a_private_address(
    make_config: ConfigFactory, url: str
) -> None:
    async with shared(make_config) as s:
        alice = await s.user("alice")
        status, answer = await s.call(
            "POST", "/api/me/channels", alice, {"name": "hook", "type": "webhook", "url": url}
        )
        assert (status, answer["field"]) == (400, "url"), answer
        status, answer = await s.call(
            "POST",
            "/api/me/channels",
            alice,
            {"name": "chat", "url": url.replace("http", "json", 1)},
        )
        assert (status, answer["field"]) == (400, "url"), answer


async def test_a_name_that_later_resolves_to_loopback_is_refused_at_delivery(
    make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    real = socket.getaddrinfo
    rebound: list[str] = []  # empty: the name does not resolve; then it points here

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebound.example":
            if not rebound:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return real(rebound[0], *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    async with receiver() as hook, shared(make_config) as s:
        alice = await s.user("alice")
        port = hook.url.split(":")[2].split("/")[0]
        await _hook(s, alice, f"http://rebound.example:{port}/hook")  # DNS down: accepted
        rebound.append("127.0.0.1")
        await _subscribe(s, alice, id=SHARED)
        await eventually(lambda: s.simulator.times_asked[SHARED] >= 2, what="a baseline")
        s.simulator.set(SHARED, A)

        async def dead() -> list[Any]:
            async with reader(s.monitor.parts.stores.repository.engine).connect() as conn:
                return list(
                    (
                        await conn.execute(
                            select(deliveries.c.state, deliveries.c.last_error).where(
                                deliveries.c.notifier == "@alice/hook"
                            )
                        )
                    ).all()
                )

        async def refused() -> bool:
            return any(state == "dead" for state, _ in await dead())

        await eventually(refused, what="the delivery refused")
        (_state, error), *_ = await dead()
        assert "refused" in error
        assert "127.0.0.1" in error
        assert not hook.requests, "nothing reached the loopback receiver"
        status, answer = await s.call("GET", "/api/me/deliveries", alice)
        assert status == 200
        (given_up,) = DeliveriesOut.model_validate(answer).deliveries
        assert (given_up.channel, given_up.event_id, given_up.state) == ("hook", SHARED, "dead")
        bob = await s.user("bob")
        assert (await s.call("GET", "/api/me/deliveries", bob))[1] == {"deliveries": []}
        status, answer = await s.call("POST", "/api/me/channels/hook/test", alice)
        assert status == 200
        assert answer["delivered"] is False
        assert "refused" in answer["error"]


async def test_what_each_users_shows_add_to_the_quota_is_shown_to_admins(
    make_config: ConfigFactory,
) -> None:
    simulator = Simulator(api_key=API_KEY)
    async with serve(simulator) as upstream:
        config = make_config(
            ticketmaster={"base_url": upstream},
            polling={"interval": "1s"},
            server={"port": 0, "token": TOKEN},
            users={"min_interval": "1s"},
            events=[{"id": SOLO}],
        )
        async with (
            Monitor(config, housekeeping_every=0.1) as monitor,
            aiohttp.ClientSession(monitor.url) as http,
        ):
            s = Shared(monitor, simulator, http)
            alice, bob = await s.user("alice"), await s.user("bob")
            await _subscribe(s, alice, id=ALICE_ONLY)
            await _subscribe(s, bob, id=SOLO)  # polled anyway, as often

            async def counted() -> bool:
                return {"alice", "bob"} <= set(monitor.parts.housekeeping.shares)

            await eventually(counted, what="the shares counted")
            assert monitor.parts.housekeeping.shares["alice"] > 0, "alone, she pays for her show"
            assert monitor.parts.housekeeping.shares["bob"] == 0, (
                "the config file polls his show anyway"
            )
            async with http.get("/metrics", headers=OPERATOR) as response:
                text = await response.text()
            assert 'inventory_monitor_user_requests_per_day{user="bob"} 0.0' in text
            async with http.get("/", headers=OPERATOR) as response:
                page = await response.text()
            assert 'id="users"' in page
            assert "alice" in page


async def test_a_calendar_feed_of_a_users_shows_and_their_sale_openings(
    make_config: ConfigFactory,
) -> None:
    show = datetime(2027, 7, 4, 19, 0, tzinfo=UTC)
    presale = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
    public = datetime(2027, 2, 3, 10, 0, tzinfo=UTC)
    simulator = Simulator(api_key=API_KEY)
    simulator.catalog.add(
        discovery_event(
            "G5vYZ9ZxzKj1A",
            "Oasis Live '25",
            starts_at=show,
            venue="Wembley",
            public_sale=(public, show),
            presales=(("Fan presale", presale, public),),
        )
    )
    async with serve(simulator) as upstream:
        config = make_config(
            ticketmaster={"base_url": upstream},
            server={"port": 0, "token": TOKEN},
            events=[{"id": SOLO}],
        )
        async with (
            Monitor(config, housekeeping_every=0.1) as monitor,
            aiohttp.ClientSession(monitor.url) as http,
        ):
            s = Shared(monitor, simulator, http)
            alice, bob = await s.user("alice"), await s.user("bob")
            await _subscribe(s, alice, id="G5vYZ9ZxzKj1A")
            status, answer = await s.call("POST", "/api/me/calendar", alice)
            assert status == 200
            feed = CalendarOut.model_validate(answer).url
            assert "imu_" not in feed, "the feed has a key of its own, never the token"

            async def summaries() -> list[str]:
                async with http.get(feed) as response:
                    assert response.status == 200
                    assert response.content_type == "text/calendar"
                    calendar = Calendar.from_ical(await response.read())
                return sorted(str(event["summary"]) for event in calendar.walk("VEVENT"))

            async def complete() -> bool:
                return len(await summaries()) == 3

            await eventually(complete, what="the show's details")
            assert await summaries() == [
                "Oasis Live '25",
                "Presale opens: Oasis Live '25 (Fan presale)",
                "Public sale opens: Oasis Live '25",
            ]
            async with http.get(feed) as response:
                calendar = Calendar.from_ical(await response.read())
            starts = {str(e["summary"]): e.decoded("dtstart") for e in calendar.walk("VEVENT")}
            assert starts["Oasis Live '25"] == show
            assert starts["Presale opens: Oasis Live '25 (Fan presale)"] == presale
            assert len(calendar.walk("VALARM")) == 2, "a reminder before each sale opens"

            _, answer = await s.call("POST", "/api/me/calendar", bob)
            async with http.get(CalendarOut.model_validate(answer).url) as response:
                assert not Calendar.from_ical(await response.read()).walk("VEVENT"), "bob's own"
            await s.call("POST", "/api/me/calendar", alice)
            async with http.get(feed) as response:
                assert response.status == 404, "a renewed key ends the old address"
            async with http.get("/api/me/calendar.ics", params={"key": "guess"}) as response:
                assert response.status == 404


async def test_a_members_requests_of_the_wrong_shape_are_refused_naming_the_field(
    make_config: ConfigFactory,
) -> None:
    async with shared(make_config) as s:
        alice = await s.user("alice")
        await _subscribe(s, alice, id=SHARED)
        refused = [
            ("POST", "/api/me/subscriptions", {"id": SHARED, "url": LINK}, "id"),
            ("POST", "/api/me/subscriptions", {"url": LINK, "region": "IE"}, "region"),
            ("POST", "/api/me/subscriptions", {"id": "NEW0001", "when": []}, "when"),
            ("PATCH", f"/api/me/subscriptions/{SHARED}", {"": {}}, ""),
            ("PATCH", f"/api/me/subscriptions/{SHARED}", {"id": "OTHER01"}, "id"),
            ("PATCH", "/api/me", {"timezone": "Mars/Olympus"}, "timezone"),
            ("PATCH", "/api/me", {"quiet_hours": {"from": "25:00", "to": "07:00"}}, None),
            ("POST", "/api/me/channels", {"name": "x", "type": "webhook", "url": "0"}, "url"),
            ("POST", "/api/me/channels", {"name": "x", "url": "nosuch://thing"}, "url"),
            ("POST", "/api/me/channels", {"name": "bad name", "url": "ntfy://topic"}, "name"),
        ]
        for method, path, body, field in refused:
            status, answer = await s.call(method, path, alice, body)
            assert status == 400, (path, body, answer)
            if field is not None:
                assert answer["field"] == field, (path, body, answer)


async def test_a_fan_follows_an_artist_and_their_new_shows_become_theirs_alone(
    make_config: ConfigFactory,
) -> None:
    simulator = Simulator(api_key=API_KEY)
    start = datetime.now(UTC) + timedelta(days=30)
    for index, city in enumerate(("Sheffield", "Manchester")):
        simulator.catalog.add(
            discovery_event(
                f"AM{index}SHOW",
                f"Arctic Monkeys in {city}",
                starts_at=start + timedelta(days=index),
                venue=f"{city} Arena",
                city=city,
                attraction=("K8vZ91713wV", "Arctic Monkeys"),
            )
        )
        simulator.set(f"AM{index}SHOW", A, NO_RESALE)
    async with (
        receiver() as alice_hook,
        receiver() as bob_hook,
        serve(simulator) as upstream,
    ):
        config = make_config(
            ticketmaster={"base_url": upstream},
            polling={"interval": "1s"},
            server={"port": 0, "token": TOKEN},
            users={"min_interval": "1s", "allow_private_targets": True},
            events=[{"id": SOLO}],
        )
        async with (
            Monitor(config, housekeeping_every=0.1, follow_every=0.2) as monitor,
            aiohttp.ClientSession(monitor.url) as http,
        ):
            s = Shared(monitor, simulator, http)
            alice, bob = await s.user("alice"), await s.user("bob")
            await _hook(s, alice, alice_hook.url)
            await _hook(s, bob, bob_hook.url)
            status, answer = await s.call(
                "POST", "/api/me/searches", alice, {"name": "monkeys", "artist": "arctic monkeys"}
            )
            assert status == 201, answer
            assert (answer["artist"], answer["attraction_id"]) == ("Arctic Monkeys", "K8vZ91713wV")

            async def followed() -> list[str]:
                _, listed = await s.call("GET", "/api/me/subscriptions", alice)
                return [item["id"] for item in listed["subscriptions"]]

            async def both() -> bool:
                return await followed() == ["AM0SHOW", "AM1SHOW"]

            await eventually(both, what="the artist's shows followed")
            await eventually(alice_hook.received(1), what="alice told of the shows found")
            notice = alice_hook.bodies()[0]
            assert notice["type"] == "discover.found"
            assert "Arctic Monkeys in Sheffield" in notice["data"]["body"]
            await eventually(
                lambda: {"AM0SHOW", "AM1SHOW"} <= set(monitor.parts.poller.watchlist), what="polled"
            )
            assert not bob_hook.requests, "bob follows no artist: he hears nothing"
            _, theirs = await s.call("GET", "/api/me/subscriptions", bob)
            assert theirs == {"subscriptions": []}

            status, answer = await s.call(
                "POST", "/api/me/searches", alice, {"name": "nobody", "artist": "Nobody Here"}
            )
            assert (status, answer["field"]) == (404, "artist")
            status, answer = await s.call("POST", "/api/me/searches", alice, {"name": "empty"})
            assert (status, answer["field"]) == (400, "artist")
            assert (await s.call("DELETE", "/api/me/searches/monkeys", bob))[0] == 404
            assert (await s.call("DELETE", "/api/me/searches/monkeys", alice))[0] == 204
            assert await followed() == ["AM0SHOW", "AM1SHOW"], "what it found stays"


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_subscription_made_on_one_replica_reaches_the_other(
    make_config: ConfigFactory, database_url: str
) -> None:
    """Replica B follows the write within its own tick, and whichever replica polls the
    show delivers to alice's channel, which both know."""
    simulator = Simulator(api_key=API_KEY)
    simulator.set(SHARED, S, NO_RESALE)
    async with receiver() as hook, serve(simulator) as upstream:
        config = make_config(
            ticketmaster={"base_url": upstream, "requests_per_second": 100},
            database={"url": database_url},
            polling={"interval": "1s"},
            server={"port": 0, "token": TOKEN},
            users={"min_interval": "1s", "allow_private_targets": True},
            events=[],
        )
        async with (
            Monitor(config, follow_every=0.2, housekeeping_every=0.2) as first,
            Monitor(config, follow_every=0.2, housekeeping_every=0.2) as second,
            aiohttp.ClientSession(first.url) as http,
        ):
            s = Shared(first, simulator, http)
            alice = await s.user("alice")
            await _hook(s, alice, hook.url)
            await _subscribe(s, alice, id=SHARED)
            assert SHARED in first.parts.poller.watchlist, "replica A at once"
            await eventually(lambda: SHARED in second.parts.poller.watchlist, what="replica B")
            assert [t.notifier for t in second.parts.poller.watchlist[SHARED].targets] == [
                "@alice/hook"
            ]
            await eventually(
                lambda: "@alice/hook" in second.parts.switchboard.dispatcher.notifiers(),
                what="B's route",
            )
            await eventually(lambda: simulator.times_asked[SHARED] >= 2, what="a baseline")
            simulator.set(SHARED, A)
            await eventually(hook.received(1), what="alice told")
            await all_sent(first.parts.stores.engine)
            assert len(hook.requests) == 1, "once, whichever replica polled it"


async def test_a_users_quiet_hours_hold_their_messages_alone(make_config: ConfigFactory) -> None:
    now = datetime.now(UTC)
    quiet = {
        "from": (now - timedelta(hours=1)).strftime("%H:%M"),
        "to": (now + timedelta(hours=1)).strftime("%H:%M"),
    }
    async with (
        receiver() as alice_hook,
        receiver() as bob_hook,
        shared(make_config, allow_private_targets=True) as s,
    ):
        alice, bob = await s.user("alice"), await s.user("bob")
        status, me = await s.call(
            "PATCH", "/api/me", alice, {"timezone": "UTC", "quiet_hours": quiet}
        )
        assert status == 200
        assert me["quiet_hours"] == quiet
        await _hook(s, alice, alice_hook.url)
        await _hook(s, bob, bob_hook.url)
        await _subscribe(s, alice, id=SHARED)
        await _subscribe(s, bob, id=SHARED)
        await eventually(lambda: s.simulator.times_asked[SHARED] >= 2, what="a baseline")
        s.simulator.set(SHARED, A)
        await eventually(bob_hook.received(1), what="bob told")
        await all_sent(s.monitor.parts.stores.engine, held={"@alice/hook"})
        assert not alice_hook.requests, "alice's quiet hours hold her message"
        async with reader(s.monitor.parts.stores.repository.engine).connect() as conn:
            (state, due) = (
                await conn.execute(
                    select(deliveries.c.state, deliveries.c.next_attempt_at).where(
                        deliveries.c.notifier == "@alice/hook"
                    )
                )
            ).one()
        assert state == "pending", "kept, not dropped"
        assert due == pytest.approx(
            (now + timedelta(hours=1)).replace(second=0).timestamp(), abs=61
        )
