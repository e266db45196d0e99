from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from monitor.config import Rule
from monitor.devtools.faults import ScriptedFault
from monitor.models import Availability
from monitor.notify.routing import Target
from monitor.store.outbox import Outbox
from monitor.store.tables import changes, deliveries, snapshots
from tests.conftest import API_KEY
from tests.rig import INTERVAL, RigBuilder
from tests.support import RN, A, F, N, U


async def test_baseline_is_silent_and_a_flip_is_one_change_with_its_deliveries(
    rig: RigBuilder,
) -> None:
    r = await rig()
    for event_id in ("E1", "E2", "E3"):
        r.simulator.set(event_id, A, RN)
    await r.cycle()
    assert await r.count(changes) == 0
    assert await r.count(snapshots) == 3
    assert {row.current for row in await r.reads.event_rows()} == {Availability(A, RN)}

    r.simulator.set("E2", F)
    await r.cycle()
    (change,) = await r.reads.changes_of()
    assert (change.event_id, change.event_name, change.previous, change.current) == (
        "E2",
        "Show E2",
        Availability(A, RN),
        Availability(F, RN),
    )
    assert await r.count(deliveries) == 1

    await r.cycle()
    await r.cycle()
    assert await r.count(changes) == 1
    assert await r.count(snapshots) == 4, "unchanged polls must not add snapshot rows"


async def test_a_restart_compares_with_the_stored_state(rig: RigBuilder) -> None:
    first = await rig()
    first.simulator.set("E1", N, RN)
    await first.cycle()
    await first.engine.dispose()

    second = await rig()
    await second.cycle()
    assert await second.count(changes) == 0, "a restart must not look like new events"
    second.simulator.set("E1", A, RN)
    await second.cycle()
    (change,) = await second.reads.changes_of("E1")
    assert change.previous == Availability(N, RN)


@pytest.mark.parametrize(
    "fault",
    [
        ScriptedFault(503, "<html>Service Unavailable</html>", "text/html"),
        ScriptedFault(200, '[{"eventId": "E1", "status": "TICK', "application/json"),
        ScriptedFault(200, '{"unexpected": true}'),
        ScriptedFault(500, '{"fault": {"faultstring": "boom"}}'),
    ],
    ids=["html-503", "truncated", "not-an-array", "fault-500"],
)
async def test_a_failed_poll_is_never_a_change(
    rig: RigBuilder, fault: ScriptedFault, caplog: pytest.LogCaptureFixture
) -> None:
    r = await rig(batch_size=10)
    await r.cycle()
    before = {row.event_id: row for row in await r.reads.event_rows()}
    r.simulator.inject(fault, times=2)
    caplog.set_level(logging.INFO)
    await r.cycle()
    await r.cycle()
    after = {row.event_id: row for row in await r.reads.event_rows()}
    assert await r.count(changes) == 0
    assert all(after[i].current == before[i].current for i in before)
    assert all(after[i].last_seen_at == before[i].last_seen_at for i in before)
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1, "one line per failure streak"

    await r.cycle()
    assert "polling works again after 2 failed requests" in caplog.text
    assert await r.count(changes) == 0


async def test_events_left_out_of_the_answer_are_not_polled_not_unknown(
    rig: RigBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    r = await rig(batch_size=10)
    r.simulator.set("E1", A, RN)
    await r.cycle()
    before = {row.event_id: row.current for row in await r.reads.event_rows()}
    body = (
        '[{"eventId": "E1", "status": "FEW_TICKETS_LEFT", "resaleStatus": "TICKETS_NOT_AVAILABLE"}]'
    )
    r.simulator.inject(ScriptedFault(200, body), times=5)
    for _ in range(5):
        await r.cycle()
    rows = {row.event_id: row for row in await r.reads.event_rows()}
    assert rows["E1"].current == Availability(F, RN)
    assert [rows[i].current for i in ("E2", "E3")] == [before["E2"], before["E3"]]
    assert None not in before.values()
    assert [c.event_id for c in await r.reads.changes_of()] == ["E1"]
    assert "the answer left out 2 requested events (E2, E3)" in caplog.text


async def test_unknown_must_persist_before_it_is_a_change(rig: RigBuilder) -> None:
    r = await rig(ids=("E1",))
    r.simulator.set("E1", A, RN)
    await r.cycle()
    for status in (U, A, U, U, A):
        r.simulator.set("E1", status)
        await r.cycle()
    assert await r.count(changes) == 0
    r.simulator.set("E1", U)
    for _ in range(3):
        await r.cycle()
    (change,) = await r.reads.changes_of()
    assert change.current.status is U


async def test_due_times_are_kept_in_the_database(rig: RigBuilder) -> None:
    r = await rig()
    start = r.clock()
    await r.poller.run_cycle()
    assert r.simulator.requests == 2
    rows = await r.reads.event_rows()
    assert {row.next_due_at for row in rows} == {start + INTERVAL}
    assert {row.last_seen_at for row in rows} == {start}
    await r.poller.run_cycle()
    assert r.simulator.requests == 2, "nothing is due before the interval"
    r.clock.advance(INTERVAL)
    await r.poller.run_cycle()
    assert r.simulator.requests == 4


async def test_the_api_key_never_reaches_the_database(
    rig: RigBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    r = await rig()
    r.simulator.inject(ScriptedFault(502, f"bad gateway for apikey={API_KEY}", "text/plain"))
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            r.simulator.step()
            await r.cycle()
    async with r.engine.connect() as connection:
        for table in ("events", "snapshots", "changes", "deliveries", "delivery_attempts"):
            rows = (await connection.execute(text(f"SELECT * FROM {table}"))).all()  # noqa: S608
            assert API_KEY not in repr(rows)
    assert API_KEY not in caplog.text


async def test_replicas_sharing_a_database_never_miss_each_others_changes(
    rig: RigBuilder,
) -> None:
    first, second = await rig(ids=("E1",)), await rig(ids=("E1",))
    first.simulator.set("E1", A, RN)
    await first.cycle()
    first.simulator.set("E1", F, RN)
    await second.cycle()
    first.simulator.set("E1", A, RN)
    await first.cycle()  # its cached state is outdated: the batch version says so
    changes_seen = [(c.previous, c.current) for c in await first.reads.changes_of("E1")]
    assert changes_seen == [
        (Availability(A, RN), Availability(F, RN)),
        (Availability(F, RN), Availability(A, RN)),
    ]


async def test_an_undocumented_status_is_no_reading_and_logged_once(
    rig: RigBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    r = await rig(ids=("E1",))
    r.simulator.set("E1", A, RN)
    await r.cycle()
    body = '[{"eventId": "E1", "status": "PRESALE", "resaleStatus": "TICKETS_NOT_AVAILABLE"}]'
    r.simulator.inject(ScriptedFault(200, body), times=2)
    await r.cycle()
    await r.cycle()
    assert await r.count(changes) == 0
    assert caplog.text.count("undocumented status value 'PRESALE'") == 1
    (row,) = await r.reads.event_rows()
    assert row.current == Availability(A, RN)


async def test_deliveries_follow_the_routing_rules(rig: RigBuilder) -> None:
    on_sale = Rule.model_validate({"field": "status", "to": ["TICKETS_AVAILABLE"]})
    r = await rig(ids=("E1",), targets=(Target("ops"), Target("fans", ((on_sale,),))))
    r.simulator.set("E1", N, RN)
    await r.cycle()
    r.simulator.set("E1", A, RN)
    await r.cycle()
    r.simulator.set("E1", F, RN)
    await r.cycle()
    rows = await Outbox(r.engine).list_deliveries()
    assert sorted(row.notifier for row in rows) == ["fans", "ops", "ops"]
