"""Polling through every limit and failure of the real API, against the simulator."""

from __future__ import annotations

import itertools
import json
import logging
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from monitor.devtools.faults import (
    HTML_503,
    INVALID_KEY_FAULT,
    QUOTA_FAULT,
    RESET,
    TRUNCATED,
    ScriptedFault,
    spike_arrest_fault,
)
from monitor.errors import Held, InvalidApiKey, RateLimited
from monitor.models import Health, ResaleStatus, Status
from monitor.notify.routing import Target
from monitor.polling.poller import RetryPolicy
from monitor.polling.watchlist import Watch
from monitor.store.repository import Repository
from monitor.store.tables import batches, changes, events
from monitor.upstream.health import Upstream
from monitor.upstream.ratelimit import TokenBucket
from tests.conftest import API_KEY, FakeClock
from tests.rig import INTERVAL, RigBuilder
from tests.support import RN, A, F, N


def health(upstream: Upstream) -> Health:
    """Read through a call, so the type checker does not narrow it between assertions."""
    return upstream.status.health


def loud(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    "fault",
    [
        HTML_503,
        RESET,
        TRUNCATED,
        ScriptedFault(kind="hang", delay=0.5),
        ScriptedFault(200, "<html>maintenance</html>", "text/html"),
    ],
    ids=["html-503", "connection-reset", "truncated", "timeout", "not-json"],
)
async def test_every_failure_is_a_failed_poll_not_a_change(
    rig: RigBuilder, fault: ScriptedFault
) -> None:
    r = await rig(batch_size=10, request_timeout=0.3)
    await r.cycle()
    # Twice: aiohttp itself retries a request once when a kept-alive connection was reset.
    r.simulator.inject(fault, times=2)
    await r.cycle()
    rows = await r.reads.event_rows()
    assert all(row.current is not None for row in rows)
    assert await r.count(changes) == 0
    assert r.upstream.failure_streak == 1


async def test_a_failed_batch_backs_off_with_jitter_without_delaying_the_others(
    rig: RigBuilder,
) -> None:
    r = await rig(ids=("E1", "E2"), batch_size=1, retry=RetryPolicy(initial=2.0, maximum=16.0))
    await r.cycle(advance=0)
    start = r.clock()
    r.simulator.set("E1", A, RN)
    ceilings = [2.0, 4.0, 8.0, 16.0, 16.0, 16.0]
    for ceiling in ceilings:
        # E1's batch fails every time; E2's batch is answered normally.
        due = await r.due_times()
        r.clock.now = min(due.values())
        failing = r.clock() >= due["E1"]
        if failing:
            r.simulator.inject(HTML_503)
        await r.poller.run_cycle()
        after = await r.due_times()
        if failing:
            assert 0 <= after["E1"] - r.clock() <= ceiling
    assert r.clock() - start < 6 * 16 + INTERVAL
    # E2 was polled on its own schedule throughout: always one interval apart.
    assert (await r.due_times())["E2"] > r.clock()


async def test_retry_after_is_a_floor_for_the_batch(rig: RigBuilder) -> None:
    r = await rig(ids=("E1",), batch_size=1)
    await r.cycle(advance=0)
    spike = ScriptedFault(429, json.dumps(spike_arrest_fault(5)), headers={"Retry-After": "42"})
    r.clock.advance(INTERVAL)
    r.simulator.inject(spike)
    await r.poller.run_cycle()
    assert (await r.due_times())["E1"] >= r.clock() + 42
    assert health(r.upstream) is Health.OK, "one spike arrest is no outage"


async def test_repeated_failures_mark_the_upstream_degraded_once_and_recovery_once(
    rig: RigBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    r = await rig(ids=("E1",), batch_size=1)
    await r.cycle()
    r.simulator.inject(HTML_503, times=6)
    for _ in range(6):
        await r.cycle_when_due()
    assert r.simulator.requests == 7
    assert health(r.upstream) is Health.DEGRADED
    stored = await r.repository.load_upstream()
    assert stored.health is Health.DEGRADED
    await r.cycle_when_due()
    assert health(r.upstream) is Health.OK
    lines = loud(caplog)
    assert len(lines) == 2, lines
    assert lines[0].startswith("a poll failed: ")
    assert "is failing (3 requests in a row)" in lines[1]
    assert caplog.text.count("recovered after 6 failed requests") == 1
    assert (await r.repository.load_upstream()).health is Health.OK
    assert await r.count(changes) == 0


async def test_batches_backing_off_come_due_again_when_the_upstream_recovers(
    rig: RigBuilder,
) -> None:
    r = await rig(ids=("E1", "E2", "E3"), batch_size=1, retry=RetryPolicy(initial=600, maximum=600))
    await r.cycle()
    r.simulator.inject(HTML_503, times=3)
    while r.simulator.requests < 6:
        await r.cycle_when_due()
    assert health(r.upstream) is Health.DEGRADED
    # Every batch now waits up to ten minutes; once a request succeeds, they do not.
    await r.cycle_when_due()
    assert health(r.upstream) is Health.OK
    assert all(at <= r.clock() + INTERVAL for at in (await r.due_times()).values())


async def test_an_invalid_key_is_reported_once_and_tried_every_five_minutes(
    rig: RigBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    r = await rig(ids=tuple(f"E{i}" for i in range(8)), batch_size=1, max_in_flight=4)
    r.simulator.api_key = "another-key"
    for _ in range(10):
        await r.cycle()
    assert r.simulator.requests == 1, "one request learns the key is refused"
    assert health(r.upstream) is Health.INVALID_API_KEY
    (line,) = loud(caplog)
    assert "this API key has no access to the Inventory Status API" in line
    assert "tries the key again every 5m" in line
    assert API_KEY not in caplog.text
    r.clock.advance(300)
    await r.cycle()
    assert r.simulator.requests == 2, "one more try after five minutes"
    r.simulator.api_key = API_KEY  # the key was granted access
    r.clock.advance(300)
    await r.cycle()
    assert r.simulator.requests == 2 + 8, "one request tries the key, then the others go"
    assert health(r.upstream) is Health.OK
    assert "the API key is accepted again" in caplog.text
    assert await r.count(changes) == 0


async def test_the_quota_is_spent_to_the_last_request_then_polling_waits_for_the_reset(
    rig: RigBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    r = await rig(ids=tuple(f"E{i}" for i in range(20)), batch_size=1, max_in_flight=4)
    r.simulator.quota, r.simulator.quota_used = 50, 40
    r.simulator.quota_reset_at = r.clock() + 3600
    await r.cycle()
    assert r.simulator.quota_used == 50
    assert r.simulator.quota_refusals == 0, "the Rate-Limit-Available header is obeyed"
    for _ in range(30):
        await r.cycle()
    assert r.simulator.requests == 10
    assert health(r.upstream) is Health.QUOTA_EXHAUSTED
    assert (await r.repository.load_upstream()).paused_until == r.simulator.quota_reset_at
    assert caplog.text.count("daily quota is used up") == 1
    r.clock.now = r.simulator.quota_reset_at
    await r.cycle()
    assert r.simulator.requests > 10
    assert r.simulator.quota_refusals == 0
    assert "the daily quota has reset; polling resumes" in caplog.text


async def test_a_quota_used_up_elsewhere_costs_exactly_one_request_before_the_reset(
    rig: RigBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    r = await rig(ids=tuple(f"E{i}" for i in range(20)), batch_size=1, max_in_flight=4)
    r.simulator.quota, r.simulator.quota_used = 50, 50
    r.simulator.quota_reset_at = r.clock() + 3600
    for _ in range(30):
        await r.cycle()
    assert r.simulator.requests == 1
    assert r.simulator.quota_refusals == 1
    assert caplog.text.count("daily quota is used up") == 1
    async with r.engine.connect() as connection:
        streaks = (await connection.execute(select(events.c.unknown_streak))).scalars().all()
    assert set(streaks) == {0}, "a refusal is no reading, never UNKNOWN"


async def test_the_poller_paces_2000_events_in_batches_of_50_under_the_spike_arrest(
    rig: RigBuilder, clock: FakeClock
) -> None:
    """Virtual time: the token bucket waits on the clock the simulator's spike arrest
    counts with, so the run takes no real time. One request in flight at a time, so each
    reaches the simulator before the next one's wait moves the clock on."""

    async def wait(seconds: float) -> None:
        clock.advance(seconds)

    ids = tuple(f"E{i:04d}" for i in range(2000))
    watches = {i: Watch(i, None, 60.0, (Target("ops"),)) for i in ids}
    limiter = TokenBucket(5 * 0.97, clock=clock, sleep=wait)
    r = await rig(watches=watches, batch_size=50, max_in_flight=1, limiter=limiter)
    r.simulator.rate = 5
    started = clock()
    await r.poller.run_cycle()
    assert r.simulator.answered == 40, "every batch polled once"
    assert r.simulator.spike_arrests == 0
    assert clock() - started == pytest.approx(39 / (5 * 0.97)), "and no slower than the rate"


async def test_an_event_answering_unknown_from_its_first_poll_is_reported(
    rig: RigBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    r = await rig(ids=("GOOD", "TYPO"), batch_size=10)
    r.simulator.set("TYPO", Status.UNKNOWN, ResaleStatus.UNKNOWN)
    for _ in range(4):
        await r.cycle()
    (line,) = loud(caplog)
    assert line.startswith("event TYPO: the API answered UNKNOWN on its first poll")
    assert "probably an invalid event ID" in line


async def test_interval_by_status_moves_an_event_between_batches(rig: RigBuilder) -> None:
    by_status = {F: 2.0, N: 60.0}
    watches = {
        i: Watch(i, None, INTERVAL, (Target("ops"),), interval_by_status=by_status)
        for i in ("E1", "E2")
    }
    r = await rig(watches=watches, batch_size=10)
    r.simulator.set("E1", A, RN)
    r.simulator.set("E2", N, RN)
    await r.cycle(advance=0)

    async def intervals() -> dict[str, float]:
        query = select(events.c.event_id, batches.c.interval_s).join(batches)
        async with r.engine.connect() as connection:
            return dict((await connection.execute(query)).all())

    assert await intervals() == {"E1": INTERVAL, "E2": 60.0}
    r.clock.advance(INTERVAL)
    r.simulator.set("E1", F, RN)
    await r.cycle(advance=0)
    assert await intervals() == {"E1": 2.0, "E2": 60.0}
    r.clock.advance(2.0)
    polled = r.simulator.requests
    await r.cycle(advance=0)
    assert r.simulator.requests == polled + 1, "E1 is polled on its short interval"
    assert await r.count(changes) == 1


async def test_events_past_their_until_time_are_not_polled(rig: RigBuilder) -> None:
    clock_start = 1_800_000_000.0
    watches = {
        "SHOW": Watch("SHOW", None, INTERVAL, (Target("ops"),), until=clock_start + 25),
        "LATER": Watch("LATER", None, INTERVAL, (Target("ops"),)),
    }
    r = await rig(watches=watches, batch_size=10)
    asked: list[set[str]] = []
    original = r.simulator.current

    def spy(event_id: str) -> tuple[Status, ResaleStatus]:
        asked[-1].add(event_id)
        return original(event_id)

    r.simulator.current = spy  # type: ignore[method-assign]
    for _ in range(5):
        asked.append(set())
        await r.cycle()
    assert asked == [{"SHOW", "LATER"}] * 3 + [{"LATER"}] * 2


_FAILURES = {
    "html-503": HTML_503,
    "reset": RESET,
    "truncated": TRUNCATED,
    "not-an-array": ScriptedFault(200, '{"events": []}'),
    "nothing-answered": ScriptedFault(200, "[]"),
    "spike-arrest": ScriptedFault(
        429, json.dumps(spike_arrest_fault(5)), headers={"Retry-After": "1"}
    ),
    "quota": ScriptedFault(
        429,
        json.dumps(QUOTA_FAULT),
        headers={"Rate-Limit-Available": "0", "Retry-After": "3600"},
    ),
    "invalid-key": ScriptedFault(401, json.dumps(INVALID_KEY_FAULT)),
}
_STEPS = st.one_of(
    st.sampled_from([A, F, N]).map(lambda status: ("answer", status)),
    st.sampled_from(sorted(_FAILURES)).map(lambda name: ("fail", name)),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_STEPS, min_size=1, max_size=12))
async def test_no_failure_sequence_makes_a_change_or_an_unknown(
    rig: RigBuilder, steps: list[tuple[str, object]]
) -> None:
    """Whatever fails in between, the stored changes are exactly the answered ones."""
    event_id = f"E{uuid.uuid4().hex[:12]}"
    r = await rig(ids=(event_id,), batch_size=1)
    r.simulator.clear_faults()
    answered: list[Status] = []
    for kind, value in steps:
        if kind == "answer":
            assert isinstance(value, Status)
            r.simulator.set(event_id, value, RN)
            answered.append(value)
        else:
            r.simulator.inject(_FAILURES[str(value)], times=2 if value == "reset" else 1)
        r.clock.now = max(r.clock.now, r.upstream.held_until() or 0.0)
        requests = r.simulator.requests
        await r.cycle_when_due()
        assert r.simulator.requests > requests, "every step is one poll"
        r.simulator.clear_faults()
    expected = [b for a, b in itertools.pairwise(answered) if a is not b]
    stored = [c.current.status for c in await r.reads.changes_of(event_id)]
    row = await r.reads.event_row(event_id)
    assert row is not None
    assert stored == expected
    assert row.current is None or row.current.status is not Status.UNKNOWN


async def test_a_restart_keeps_the_quota_pause(rig: RigBuilder) -> None:
    r = await rig(ids=("E1",), batch_size=1)
    r.simulator.quota, r.simulator.quota_used = 10, 10
    r.simulator.quota_reset_at = r.clock() + 3600
    await r.cycle()
    assert r.simulator.requests == 1
    restarted = await rig(ids=("E1",), batch_size=1)
    restarted.upstream.status = await restarted.repository.load_upstream()
    for _ in range(10):
        await restarted.cycle()
    assert r.simulator.requests == 1, "the restarted daemon does not ask again before the reset"


@pytest.mark.unit
async def test_a_quota_refusal_holds_requests_for_a_minute_even_if_the_reset_has_passed() -> None:
    clock = FakeClock()
    upstream = Upstream(clock=clock)
    await upstream.admit()
    upstream.failed(RateLimited("quota", retry_after=0.0, quota=True))
    assert upstream.held_until() == clock() + 60
    clock.advance(59)
    with pytest.raises(Held):
        await upstream.admit()
    clock.advance(1)
    await upstream.admit()


async def test_a_replica_adopts_the_quota_pause_another_one_found(
    repository: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    first, second = Upstream(clock=clock), Upstream(clock=clock)
    await first.admit()
    first.failed(RateLimited("quota", retry_after=3600.0, quota=True))
    saved = first.pending_save()
    assert saved is not None
    await repository.save_upstream(saved)

    second.adopt(await repository.load_upstream())
    assert second.held_until() == clock() + 3600
    assert health(second) is Health.QUOTA_EXHAUSTED
    assert "another replica found the daily quota used up" in caplog.text
    with pytest.raises(Held):
        await second.admit()

    clock.advance(3600)
    second.adopt(await repository.load_upstream())
    await second.admit()  # the pause is over for everyone


async def test_the_saved_refusal_of_a_replaced_key_is_not_adopted_again(
    repository: Repository,
) -> None:
    """The key is replaced while the refusal of the old one is still the saved status: the
    periodic look at what replicas saved must not bring its 5-minute pause back."""
    clock = FakeClock(1000.0)
    upstream = Upstream(clock=clock, invalid_key_retry=300.0)
    await upstream.admit()
    upstream.failed(InvalidApiKey("HTTP 401"))
    saved = upstream.pending_save()
    assert saved is not None
    await repository.save_upstream(saved)
    clock.advance(5)
    upstream.retry_now(in_flight_for=2.0)
    upstream.adopt(await repository.load_upstream())
    assert upstream.held_until() is None, "the new key is tried at once"

    other = Upstream(clock=clock)  # a replica that never replaced its key
    other.adopt(await repository.load_upstream())
    assert other.held_until() == 1300.0


@pytest.mark.unit
def test_a_refusal_of_the_replaced_key_does_not_pause_the_new_one() -> None:
    """A request sent with the old key may be answered after the key was replaced: its
    refusal is not the new key's, which is tried at once; a refusal after that is."""
    clock = FakeClock(1000.0)
    upstream = Upstream(clock=clock, invalid_key_retry=300.0)
    upstream.failed(InvalidApiKey("HTTP 401"))
    assert upstream.status.health is Health.INVALID_API_KEY
    upstream.retry_now(in_flight_for=10.0)
    clock.advance(1.0)
    upstream.failed(InvalidApiKey("HTTP 401, to a request sent with the old key"))
    assert upstream.status.paused_until == 1000.0, "the new key is tried at once"
    clock.advance(10.0)
    upstream.failed(InvalidApiKey("HTTP 401"))
    assert upstream.status.paused_until == 1011.0 + 300.0, "the new key refused: paused"
