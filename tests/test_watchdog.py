"""The watchdog, with time in the test's hands."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.config import Config
from monitor.errors import DeliveryError
from monitor.models import Delivery, Health, Notice, new_id
from monitor.notify.watchdog import Watchdog
from monitor.polling.watchlist import Watch
from monitor.store.reads import Reads
from monitor.store.repository import Repository
from monitor.upstream.health import Upstream
from tests.conftest import ConfigFactory, FakeClock, change_with_delivery
from tests.e2e import receiver

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z


class Inbox:
    kind = "inbox"

    def __init__(self, failures: int = 0) -> None:
        self.name = "pager"
        self.notices: list[Notice] = []
        self.failures = failures

    async def send(self, delivery: Delivery) -> str:
        raise AssertionError("the watchdog sends notices, not deliveries")

    async def send_notice(self, notice: Notice) -> str:
        if self.failures:
            self.failures -= 1
            raise DeliveryError("the pager service is down")
        self.notices.append(notice)
        return "received"

    async def aclose(self) -> None:
        return None


def build(
    config: Config, engine: AsyncEngine, clock: FakeClock, inbox: Inbox
) -> tuple[Watchdog, Upstream]:
    upstream = Upstream(clock=clock)
    watchdog = Watchdog(
        config=lambda: config,
        notifiers=lambda: {"pager": inbox},
        upstream=upstream,
        reads=Reads(engine),
        clock=clock,
    )
    return watchdog, upstream


def succeeded_at(upstream: Upstream, at: float) -> None:
    upstream.status = dataclasses.replace(upstream.status, last_success_at=at)


async def test_a_stall_is_reported_once_and_so_is_the_recovery(
    make_config: ConfigFactory, engine: AsyncEngine
) -> None:
    clock = FakeClock(START)
    config = make_config(
        notifiers={"pager": {"type": "log"}}, alerts={"notify": ["pager"], "stalled_after": "1m"}
    )
    inbox = Inbox()
    watchdog, upstream = build(config, engine, clock, inbox)
    succeeded_at(upstream, START)
    for _ in range(5):
        clock.advance(20)
        await watchdog.check()
    assert [n.kind for n in inbox.notices] == ["stalled"]
    (stalled,) = inbox.notices
    assert stalled.subject == "inventory-monitor is not working"
    assert "No poll has succeeded for over 1m (last at 2027-01-15T08:00:00Z)" in stalled.body
    upstream.status = dataclasses.replace(
        upstream.status, health=Health.INVALID_API_KEY, last_error="HTTP 401"
    )
    for _ in range(3):
        clock.advance(20)
        await watchdog.check()
    assert len(inbox.notices) == 1, "one notice per episode"
    succeeded_at(upstream, clock())
    for _ in range(3):
        clock.advance(5)
        await watchdog.check()
    assert [n.kind for n in inbox.notices] == ["stalled", "recovered"]


async def test_the_default_stall_limit_is_three_intervals_and_notices_are_retried(
    make_config: ConfigFactory, engine: AsyncEngine
) -> None:
    clock = FakeClock(START)
    config = make_config(notifiers={"pager": {"type": "log"}}, alerts={"notify": ["pager"]})
    inbox = Inbox(failures=2)
    watchdog, _ = build(config, engine, clock, inbox)
    clock.advance(29)  # the test config polls every 10s
    await watchdog.check()
    assert watchdog.stalled is False
    clock.advance(2)
    await watchdog.check()
    assert watchdog.stalled is True
    assert inbox.notices == []
    await watchdog.check()
    await watchdog.check()
    assert [n.kind for n in inbox.notices] == ["stalled"], "sent on the third try"
    assert "never since the start" in inbox.notices[0].body


async def test_the_heartbeat_follows_successful_polls_at_most_once_a_minute(
    make_config: ConfigFactory, engine: AsyncEngine
) -> None:
    clock = FakeClock(START)
    async with receiver() as hook:
        config = make_config(alerts={"heartbeat_url": hook.url})
        watchdog, upstream = build(config, engine, clock, Inbox())
        await watchdog.check()
        assert hook.requests == [], "no ping before a poll succeeded"
        for _ in range(12):
            clock.advance(10)
            succeeded_at(upstream, clock())
            await watchdog.check()
        assert len(hook.requests) == 2
        clock.advance(60)
        await watchdog.check()
        assert len(hook.requests) == 3, "the polls since the last ping"
        clock.advance(120)
        await watchdog.check()
        assert len(hook.requests) == 3, "no ping without a new successful poll"
        await watchdog.aclose()


async def test_the_daily_summary_goes_out_once_a_day_at_its_time(
    make_config: ConfigFactory, engine: AsyncEngine
) -> None:
    clock = FakeClock(START)  # 08:00 UTC
    config: Any = make_config(
        notifiers={"pager": {"type": "log"}},
        alerts={"notify": ["pager"], "daily_summary": "09:30"},
    )
    inbox = Inbox()
    watchdog, upstream = build(config, engine, clock, inbox)
    await Repository(engine).save_poll(change_with_delivery(1, at=START))
    for _ in range(3):
        succeeded_at(upstream, clock())
        await watchdog.check()
        clock.advance(3600)
    assert [n.kind for n in inbox.notices] == ["summary"]
    summary = inbox.notices[0]
    assert "1 changes in the last 24 hours" in summary.body
    assert "E1: TICKETS_NOT_AVAILABLE → TICKETS_AVAILABLE" in summary.body
    clock.advance(86400)
    succeeded_at(upstream, clock())
    await watchdog.check()
    assert [n.kind for n in inbox.notices] == ["summary", "summary"]


async def test_the_stall_limit_follows_the_intervals_actually_polled(
    make_config: ConfigFactory, engine: AsyncEngine
) -> None:
    """fit_quota and interval_by_status poll slower than the config's shortest interval."""
    clock = FakeClock(START)
    config = make_config(notifiers={"pager": {"type": "log"}}, alerts={"notify": ["pager"]})
    await Repository(engine).sync_watchlist([Watch("EV1", None, 600.0)], 100, START, new_id)
    inbox = Inbox()
    watchdog, upstream = build(config, engine, clock, inbox)
    succeeded_at(upstream, START)
    clock.advance(1000)
    await watchdog.check()
    assert not watchdog.stalled, "3 x 600s have not passed"
    clock.advance(900)
    await watchdog.check()
    assert watchdog.stalled
