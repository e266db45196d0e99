"""Who among the users hears of a change: their channels, their rules, their interval.
Pure functions, tested with tables."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.models import Availability, Change, ChangeKind, ResaleStatus, Status
from monitor.netguard import forbidden, host_problem, url_host
from monitor.notify.audience import interval_of, targets_of
from monitor.notify.channels import ChannelRoster
from monitor.notify.routing import route
from monitor.redact import redact
from monitor.store.accounts import Accounts, Channel, Role, User, owner_of
from monitor.store.subscriptions import Follower
from monitor.upstream.quota import follower_shares

A, F, N = Status.TICKETS_AVAILABLE, Status.FEW_TICKETS_LEFT, Status.TICKETS_NOT_AVAILABLE
RA, RN = ResaleStatus.TICKETS_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE


def _change(
    before: tuple[Status, ResaleStatus] | None,
    after: tuple[Status, ResaleStatus],
    **news: Any,
) -> Change:
    previous = None if before is None else Availability(*before)
    return Change("c", "E1", None, previous, Availability(*after), 0.0, **news)


def _follower(user: str = "alice", role: Role = Role.MEMBER, **settings: Any) -> Follower:
    return Follower(user, role, settings, ("phone", "hook"))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("settings", "change", "heard"),
    [
        ({}, _change((N, RN), (A, RN)), True),
        ({}, _change((N, RN), (N, RA)), True),
        ({"resale": False}, _change((N, RN), (N, RA)), False),
        ({"when": ["TICKETS_AVAILABLE"]}, _change((N, RN), (F, RN)), False),
        ({"when": ["TICKETS_AVAILABLE"]}, _change((F, RN), (A, RN)), True),
        ({"when": ["TICKETS_AVAILABLE"], "resale": False}, _change((A, RN), (A, RA)), False),
        ({}, _change((A, RN), (A, RN), lifecycle=("onsale", "canceled")), True),
        ({"lifecycle": False}, _change((A, RN), (A, RN), lifecycle=("onsale", "canceled")), False),
        ({"sales": False}, _change((A, RN), (A, RN), lifecycle=("onsale", "canceled")), True),
    ],
)
def test_a_subscriptions_rules(settings: dict[str, Any], change: Change, heard: bool) -> None:
    targets = targets_of([_follower(**settings)])
    assert bool(route(targets, change)) is heard
    assert change.kind in ChangeKind


@pytest.mark.unit
@pytest.mark.parametrize(
    ("followers", "names"),
    [
        ([_follower()], ["@alice/phone", "@alice/hook"]),
        ([_follower(notify=["hook"])], ["@alice/hook"]),
        ([_follower(notify=["gone"])], []),
        ([_follower(notify=[])], []),
        (
            [_follower(), _follower("bob", notify=["phone"])],
            ["@alice/phone", "@alice/hook", "@bob/phone"],
        ),
        ([_follower(), _follower()], ["@alice/phone", "@alice/hook"]),
    ],
)
def test_each_channel_is_reached_once(followers: list[Follower], names: list[str]) -> None:
    assert [target.notifier for target in targets_of(followers)] == names


@pytest.mark.unit
@pytest.mark.parametrize(
    ("followers", "interval"),
    [
        ([], None),
        ([_follower()], 60.0),
        ([_follower(interval=10.0)], 30.0),
        ([_follower(role=Role.ADMIN, interval=10.0)], 10.0),
        ([_follower(interval=300.0), _follower("bob", interval=120.0)], 120.0),
    ],
)
def test_the_shortest_interval_asked_for(followers: list[Follower], interval: float | None) -> None:
    assert interval_of(followers, default=60.0, member_floor=30.0) == interval


@pytest.mark.unit
@pytest.mark.parametrize(
    ("notifier", "owner"), [("@alice/phone", "alice"), ("ops", None), ("@bob/", "bob")]
)
def test_the_owner_of_a_channel(notifier: str, owner: str | None) -> None:
    assert owner_of(notifier) == owner


@pytest.mark.unit
@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.10", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("0.0.0.0", True),  # noqa: S104 - an address refused, not one bound
        ("::1", True),
        ("fe80::1", True),
        ("fd00:ec2::254", True),
        ("::ffff:127.0.0.1", True),
        ("2002:7f00:1::1", True),
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
        ("example.org", False),
    ],
)
def test_which_addresses_are_refused(address: str, refused: bool) -> None:
    assert forbidden(address) is refused


@pytest.mark.unit
@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("localhost", True),
        ("LocalHost.", True),
        ("app.localhost", True),
        ("metadata.google.internal", True),
        ("[::1]", True),
        ("ntfy.sh", False),
    ],
)
def test_which_hosts_are_refused_unresolved(host: str, refused: bool) -> None:
    assert (host_problem(host) is not None) is refused


@pytest.mark.unit
@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("ntfy://alerts", None),
        ("ntfy://ntfy.example.org/alerts", "ntfy.example.org"),
        ("tgram://123456789:AAE-token/42", None),
        ("discord://1234/abcd", None),
        ("json://localhost:8000/hook", "localhost"),
        ("json://10.0.0.5/hook", "10.0.0.5"),
        ("mailtos://user:pass@mail.example.org", "mail.example.org"),
    ],
)
def test_the_server_an_apprise_url_names(url: str, host: str | None) -> None:
    assert url_host(url) == host


@pytest.mark.unit
@pytest.mark.parametrize(
    ("followers", "anyway", "shares"),
    [
        ({"E1": [("alice", 60.0)]}, {}, {"alice": 1440.0}),
        ({"E1": [("alice", 60.0)]}, {"E1": 60.0}, {"alice": 0.0}),
        ({"E1": [("alice", 60.0)]}, {"E1": 120.0}, {"alice": 720.0}),
        ({"E1": [("alice", 60.0), ("bob", 60.0)]}, {}, {"alice": 0.0, "bob": 0.0}),
        ({"E1": [("alice", 120.0), ("bob", 60.0)]}, {}, {"alice": 0.0, "bob": 720.0}),
        (
            {"E1": [("alice", 60.0)], "E2": [("alice", 120.0), ("bob", 240.0)]},
            {},
            {"alice": 1440.0 + 360.0, "bob": 0.0},
        ),
    ],
)
def test_what_each_user_adds_to_the_quota(
    followers: dict[str, list[tuple[str, float]]],
    anyway: dict[str, float],
    shares: dict[str, float],
) -> None:
    assert follower_shares(followers, anyway, capacity=1) == pytest.approx(shares)


async def test_a_users_channel_never_reaches_a_log_line_whole(engine: AsyncEngine) -> None:
    """Apprise URLs carry tokens and webhooks their secrets: once the routes are built,
    every error and log line masks them, as the config file's own."""
    accounts = Accounts(engine)
    user = User("u1", "alice", Role.MEMBER, False, {}, 1.0, 1.0)
    await accounts.add_user(user, None, "0" * 64)
    url = "json://hooks.example.org/alice-channel-token-77"
    await accounts.add_channel(Channel("u1", "chat", "apprise", url, None, 1.0), None)
    secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUEFMSUNF"
    hook = "https://hooks.example.org/in?key=alice-hook-key-88"
    await accounts.add_channel(Channel("u1", "hook", "webhook", hook, secret, 1.0), None)
    await ChannelRoster(accounts, lambda: False).refresh()
    said = redact(f"could not send to {url}; {hook} refused; signed with {secret}")
    for shown in ("alice-channel-token-77", "alice-hook-key-88", secret):
        assert shown not in said
