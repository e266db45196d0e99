"""Cooldowns and grouping: the rule as a table, then through the outbox and dispatcher."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from monitor.config import RetryConfig
from monitor.errors import DeliveryError
from monitor.models import Availability, Delivery, Status
from monitor.notify.cooldown import NOTHING_NEW, SUPERSEDED, LastSent, cooldown
from monitor.notify.decisions import SEND, Decision, DeferUntil
from monitor.notify.dispatcher import Dispatcher
from monitor.notify.grouping import NOTHING_DUE, group_decision
from monitor.notify.roster import Route
from monitor.store.outbox import Outbox
from monitor.store.repository import Repository
from tests.conftest import FakeClock, change_with_delivery
from tests.support import RN, A, F, N, Recorder


def av(status: Status) -> Availability:
    return Availability(status, RN)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("current", "last_sent", "newer", "now", "expected"),
    [
        (av(A), None, False, 100.0, SEND),
        (av(A), None, True, 100.0, SUPERSEDED),
        (av(A), LastSent(50.0, av(N)), False, 100.0, DeferUntil(650.0)),
        (av(A), LastSent(50.0, av(N)), False, 650.0, SEND),
        (av(A), LastSent(50.0, av(A)), False, 650.0, NOTHING_NEW),
        (av(A), LastSent(50.0, av(N)), True, 100.0, SUPERSEDED),
    ],
    ids=["first", "superseded", "within-cooldown", "after-cooldown", "nothing-new", "newer"],
)
def test_cooldown_stage(
    current: Availability,
    last_sent: LastSent | None,
    newer: bool,
    now: float,
    expected: Decision,
) -> None:
    assert cooldown(current, 600.0, last_sent, newer, now) == expected


@pytest.mark.unit
@pytest.mark.parametrize(
    ("oldest_new", "oldest_retry", "now", "expected"),
    [
        (None, None, 100.0, NOTHING_DUE),
        (100.0, None, 100.0, DeferUntil(130.0)),
        (100.0, None, 129.9, DeferUntil(130.0)),
        (100.0, None, 130.0, SEND),
        (None, 120.0, 120.0, SEND),
        (None, 120.0, 110.0, DeferUntil(120.0)),
        (100.0, 110.0, 110.0, SEND),
        (100.0, 140.0, 135.0, SEND),
        (0.0, None, 10.0, DeferUntil(30.0)),
    ],
    ids=[
        "nothing",
        "window-opens",
        "window-open",
        "window-closes",
        "retry-due",
        "retry-not-yet",
        "retry-before-window",
        "window-before-retry",
        "epoch-zero",
    ],
)
def test_group_stage(
    oldest_new: float | None, oldest_retry: float | None, now: float, expected: Decision
) -> None:
    assert group_decision(oldest_new, oldest_retry, 30.0, now) == expected


class Scenario:
    """Changes stored as the poller stores them, dispatched as the daemon does."""

    def __init__(self, repository: Repository, clock: FakeClock, route: Route) -> None:
        self.repository, self.clock = repository, clock
        self.dispatcher = Dispatcher(
            Outbox(repository.engine), {"ops": route}, clock, rng=random.Random(1)
        )
        self.numbers = itertools.count()

    async def change(
        self,
        event_id: str,
        before: Status,
        after: Status,
        *,
        cooldown: float = 0,
    ) -> None:
        await self.repository.save_poll(
            change_with_delivery(
                next(self.numbers),
                at=self.clock(),
                event_id=event_id,
                previous=before.value,
                status=after.value,
                cooldown=cooldown,
            )
        )

    async def run(self) -> None:
        await self.dispatcher.pump()
        await self.dispatcher.drain()


def route(notifier: Recorder, *, group_window: float = 0.0) -> Route:
    return Route(notifier, RetryConfig(), concurrency=4, timeout=10.0, group_window=group_window)


async def test_a_cooldown_sends_only_the_latest_state_and_only_if_it_is_new(
    repository: Repository, clock: FakeClock
) -> None:
    recorder = Recorder()
    outbox = Scenario(repository, clock, route(recorder))
    await outbox.change("E1", N, A, cooldown=600)
    await outbox.run()
    assert [d.change.current.status for d in recorder.sent] == [A]

    clock.advance(60)
    await outbox.change("E1", A, F, cooldown=600)
    await outbox.run()
    clock.advance(60)
    await outbox.change("E1", F, N, cooldown=600)
    await outbox.run()
    assert len(recorder.sent) == 1, "nothing within the cooldown"

    clock.advance(480)
    await outbox.run()
    assert [d.change.current.status for d in recorder.sent] == [A, N], "only the latest state"

    clock.advance(60)
    await outbox.change("E1", N, F, cooldown=600)
    clock.advance(60)
    await outbox.change("E1", F, N, cooldown=600)
    clock.advance(600)
    await outbox.run()
    assert len(recorder.sent) == 2, "back where it was when last sent: nothing new to say"
    states = {row.id: row.state for row in await Outbox(repository.engine).list_deliveries()}
    assert states == {
        "d0": "delivered",
        "d1": "superseded",
        "d2": "delivered",
        "d3": "superseded",
        "d4": "superseded",
    }


async def test_other_events_are_not_held_by_one_events_cooldown(
    repository: Repository, clock: FakeClock
) -> None:
    recorder = Recorder()
    outbox = Scenario(repository, clock, route(recorder))
    await outbox.change("E1", N, A, cooldown=600)
    await outbox.run()
    clock.advance(10)
    await outbox.change("E2", N, A, cooldown=600)
    await outbox.run()
    assert [d.change.event_id for d in recorder.sent] == ["E1", "E2"]


async def test_changes_within_the_group_window_go_out_as_one_message(
    repository: Repository, clock: FakeClock
) -> None:
    recorder = Recorder()
    outbox = Scenario(repository, clock, route(recorder, group_window=30))
    for event_id in ("E1", "E2", "E3"):
        await outbox.change(event_id, N, A)
        clock.advance(5)
    await outbox.run()
    assert recorder.sent == [], "the window is still open"
    clock.advance(15)
    await outbox.run()
    (message,) = recorder.sent
    assert [c.event_id for c in message.changes] == ["E1", "E2", "E3"]
    assert {row.state for row in await Outbox(repository.engine).list_deliveries()} == {"delivered"}

    clock.advance(60)
    await outbox.change("E1", A, F)
    await outbox.run()
    assert len(recorder.sent) == 1, "a change after the window closed opens a new one"
    clock.advance(30)
    await outbox.run()
    assert [[c.event_id for c in m.changes] for m in recorder.sent] == [["E1", "E2", "E3"], ["E1"]]


async def test_a_group_window_holds_across_replicas(
    repository: Repository, clock: FakeClock
) -> None:
    """The window lives in the outbox: a dispatcher that has seen nothing (another replica,
    or this one after a restart) still waits for it to close, then sends the group whole."""
    first, second = Recorder(), Recorder()
    one = Scenario(repository, clock, route(first, group_window=30))
    other = Scenario(repository, clock, route(second, group_window=30))
    other.numbers = itertools.count(100)
    await one.change("E1", N, A)
    clock.advance(10)
    await other.change("E2", N, A)
    clock.advance(10)
    await other.run()
    await one.run()
    assert first.sent == second.sent == [], "neither replica sends before the window closes"
    clock.advance(10)
    await other.run()
    await one.run()
    messages = first.sent + second.sent
    assert [[c.event_id for c in m.changes] for m in messages] == [["E1", "E2"]]


async def test_a_retry_is_not_held_by_the_group_window(
    repository: Repository, clock: FakeClock
) -> None:
    failing = Failing()
    outbox = Scenario(repository, clock, route(failing, group_window=30))
    await outbox.change("E1", N, A)
    clock.advance(30)
    await outbox.run()
    assert failing.attempts == 1
    (row,) = await Outbox(repository.engine).list_deliveries()
    clock.now = row.next_attempt_at
    await outbox.run()
    assert failing.attempts == 2, "due for its retry, it goes at once, not a window later"


class Failing(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def send(self, delivery: Delivery) -> str:
        self.attempts += 1
        raise DeliveryError("HTTP 503", status=503)


class Stuck(Recorder):
    """A receiver that never answers until released."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def send(self, delivery: Delivery) -> str:
        self.sent.append(delivery)
        await self.release.wait()
        return "late"


async def test_a_stuck_receiver_never_holds_up_another(
    repository: Repository, clock: FakeClock
) -> None:
    stuck, healthy = Stuck(), Recorder()
    routes = {"stuck": route(stuck), "ops": route(healthy)}
    dispatcher = Dispatcher(Outbox(repository.engine), routes, clock)
    for number in range(10):
        write = change_with_delivery(number, at=clock(), event_id=f"E{number}")
        write.deliveries.append(write.deliveries[0]._replace(id=f"s{number}", notifier="stuck"))
        await repository.save_poll(write)
    await dispatcher.pump()
    for _ in range(500):  # let the healthy sends run; no real time passes
        await asyncio.sleep(0)
        if len(healthy.sent) == 10:
            break
    await dispatcher.pump()
    assert len(healthy.sent) == 10
    assert len(stuck.sent) == 4, "the stuck one uses only its own concurrency"
    stuck.release.set()
    await dispatcher.drain()
    await dispatcher.pump()
    await dispatcher.drain()
    assert len(stuck.sent) == 10
