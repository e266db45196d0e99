"""Quiet hours: the window as a table, then through the outbox and the dispatcher, then in
a replay."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from monitor.config import RetryConfig, Rule
from monitor.errors import ConfigError
from monitor.models import Availability, Change, Status
from monitor.notify.decisions import SEND, DeferUntil
from monitor.notify.dispatcher import Dispatcher
from monitor.notify.dry_run import Fate, replay
from monitor.notify.quiet import QuietHours, quiet, quiet_until
from monitor.notify.roster import Route
from monitor.notify.routing import Target, urgent
from monitor.store.outbox import Outbox
from monitor.store.records import NewDelivery, PollWrite
from monitor.store.repository import Repository
from tests.conftest import ConfigFactory, FakeClock
from tests.support import RN, A, F, N, Recorder

NIGHT = QuietHours(time(23), time(7), ZoneInfo("Europe/London"))
DAY = QuietHours(time(9), time(17), ZoneInfo("UTC"))


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("hours", "now", "ends"),
    [
        (NIGHT, "2026-12-01T22:59:59+00:00", None),
        (NIGHT, "2026-12-01T23:00:00+00:00", "2026-12-02T07:00:00+00:00"),
        (NIGHT, "2026-12-02T03:00:00+00:00", "2026-12-02T07:00:00+00:00"),
        (NIGHT, "2026-12-02T07:00:00+00:00", None),
        (NIGHT, "2026-07-01T22:30:00+00:00", "2026-07-02T06:00:00+00:00"),  # summer time
        (DAY, "2026-12-01T12:00:00+00:00", "2026-12-01T17:00:00+00:00"),
        (DAY, "2026-12-01T18:00:00+00:00", None),
        (QuietHours(time(8), time(8), ZoneInfo("UTC")), "2026-12-01T08:00:00+00:00", None),
    ],
    ids=["before", "starts", "night", "ends", "summer-time", "by-day", "after-day", "empty"],
)
def test_the_quiet_window(hours: QuietHours, now: str, ends: str | None) -> None:
    assert quiet_until(at(now), hours) == (None if ends is None else at(ends))


@pytest.mark.unit
def test_an_urgent_change_ignores_quiet_hours() -> None:
    night = at("2026-12-02T03:00:00+00:00")
    assert quiet(night, NIGHT, urgent=False) == DeferUntil(at("2026-12-02T07:00:00+00:00"))
    assert quiet(night, NIGHT, urgent=True) == SEND
    assert quiet(night, None, urgent=False) == SEND
    on_sale = Rule.model_validate({"field": "status", "to": "TICKETS_AVAILABLE", "urgent": True})
    other = Rule.model_validate({"field": "status"})
    target = Target("fans", ((on_sale, other),))
    assert urgent(target, Change("c", "E1", None, Availability(N, RN), Availability(A, RN), 0.0))
    assert not urgent(
        target, Change("c", "E1", None, Availability(A, RN), Availability(F, RN), 0.0)
    )


async def test_the_night_goes_out_at_its_end_as_one_message_without_what_reverted(
    repository: Repository, clock: FakeClock
) -> None:
    clock.now = at("2026-12-01T20:00:00+00:00")
    numbers = itertools.count()

    async def change(event: str, before: Status, after: Status, *, is_urgent: bool = False) -> str:
        number = next(numbers)
        change = Change(
            f"c{number}", event, None, Availability(before, RN), Availability(after, RN), clock()
        )
        write = PollWrite(changes=[change])
        write.deliveries.append(
            NewDelivery(f"d{number}", change.id, "night", clock(), 0.0, is_urgent)
        )
        await repository.save_poll(write)
        return f"d{number}"

    recorder = Recorder("night")
    route = Route(recorder, RetryConfig(), concurrency=4, timeout=10.0, quiet_hours=NIGHT)
    outbox = Outbox(repository.engine)
    dispatcher = Dispatcher(outbox, {"night": route}, clock, rng=random.Random(1))

    async def run() -> None:
        await dispatcher.pump()
        await dispatcher.drain()

    first = await change("E1", A, N)  # the evening: sent at once
    await run()
    assert [d.id for d in recorder.sent] == [first]
    clock.now = at("2026-12-02T01:00:00+00:00")
    await change("E1", N, A)
    clock.advance(600)
    await change("E1", A, N)  # back to where it was when last told: nothing to say
    await change("E2", N, A)
    await change("E3", N, F)
    alarm = await change("E4", N, A, is_urgent=True)
    await run()
    assert [d.id for d in recorder.sent] == [first, alarm], "only the urgent one in the night"
    clock.now = at("2026-12-02T07:00:00+00:00")
    await run()
    morning = recorder.sent[-1]
    assert len(recorder.sent) == 3, "the night's news in one message"
    assert sorted(c.event_id for c in morning.changes) == ["E2", "E3"]
    states = {row.id: row.state for row in await outbox.list_deliveries()}
    assert states["d1"] == states["d2"] == "superseded"


@pytest.mark.unit
def test_quiet_hours_are_checked(make_config: ConfigFactory) -> None:
    with pytest.raises(ConfigError, match=r"quiet_hours\.timezone: unknown time zone 'Mars/Base'"):
        make_config(
            notifiers={
                "n": {
                    "type": "log",
                    "quiet_hours": {"from": "23:00", "to": "07:00", "timezone": "Mars/Base"},
                }
            }
        )
    with pytest.raises(ConfigError, match=r"quiet_hours\.to"):
        make_config(notifiers={"n": {"type": "log", "quiet_hours": {"from": "23:00", "to": "7am"}}})
    config = make_config(
        notifiers={"n": {"type": "log", "quiet_hours": {"from": "23:00", "to": "07:00"}}}
    )
    assert QuietHours.of(config.notifiers["n"].quiet_hours) == QuietHours(
        time(23), time(7), ZoneInfo("UTC")
    )


@pytest.mark.unit
def test_replay_holds_the_night_until_morning() -> None:
    night = at("2026-12-02T01:00:00+00:00")
    history = [
        Change("c1", "E1", None, Availability(N, RN), Availability(A, RN), night),
        Change("c2", "E2", None, Availability(N, RN), Availability(F, RN), night + 60),
    ]
    planned = replay(history, lambda _: (Target("n"),), ["n"], {}, {"n": NIGHT})
    morning = at("2026-12-02T07:00:00+00:00")
    assert [(p.change.id, p.fate, p.at) for p in planned] == [
        ("c1", Fate.SENT, morning),
        ("c2", Fate.SENT, morning),
    ]
    assert datetime.fromtimestamp(morning, UTC).hour == 7
