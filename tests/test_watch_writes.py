"""A write to the watchlist never costs a poll: it changes the one event it names, in the
database and in the poller, and a cycle in flight finishes with the states it claimed."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from sqlalchemy import select

from monitor.app import Monitor
from monitor.devtools.simulator import Simulator, serve
from monitor.models import Availability, new_id
from monitor.notify.routing import Target
from monitor.polling import recorder as recorder_module
from monitor.polling.detect import detect
from monitor.polling.poller import CycleStats
from monitor.polling.watchlist import Watch
from monitor.server.watch_routes import WatchesPage
from monitor.store.membership import apply_watches
from monitor.store.tables import batches, changes, events
from monitor.watchlog import HOLE_WAIT, LogCursor
from tests.conftest import API_KEY, ConfigFactory
from tests.e2e import receiver
from tests.rig import INTERVAL, Rig, RigBuilder
from tests.support import RN, A, F, eventually

TOKEN = "watch-writes-token-5e2a"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _watch(event_id: str, interval: float = INTERVAL) -> Watch:
    return Watch(event_id, f"Show {event_id}", interval, (Target("ops"),))


async def _batches(r: Rig) -> dict[str, tuple[int, int, frozenset[str]]]:
    """By batch ID: its version, its size and its members."""
    async with r.engine.connect() as conn:
        rows = (await conn.execute(select(batches.c.id, batches.c.version, batches.c.size))).all()
        members = (
            await conn.execute(
                select(events.c.batch_id, events.c.event_id).where(events.c.batch_id.is_not(None))
            )
        ).all()
    by_batch: dict[str, set[str]] = {}
    for batch_id, event_id in members:
        by_batch.setdefault(batch_id, set()).add(event_id)
    return {bid: (version, size, frozenset(by_batch.get(bid, ()))) for bid, version, size in rows}


async def _write(r: Rig, wanted: dict[str, Watch | None]) -> None:
    """What the daemon does for a write: the store, then the poller, for these events."""
    await apply_watches(r.engine, wanted, 2, r.clock(), new_id)
    for event_id, watch in wanted.items():
        r.poller.set_watch(event_id, watch)


async def _cycle_in_flight(rig: RigBuilder) -> tuple[Rig, asyncio.Task[CycleStats]]:
    """Four events read once, then all changed, and a cycle waiting for the slow answer."""
    r = await rig(ids=("E1", "E2", "E3", "E4"), batch_size=2, max_in_flight=2)
    for event_id in ("E1", "E2", "E3", "E4", "E9"):
        r.simulator.set(event_id, A, RN)
    await r.cycle()
    for event_id in ("E1", "E2", "E3", "E4"):
        r.simulator.set(event_id, F, RN)
    r.simulator.latency = 0.3
    cycle = asyncio.create_task(r.poller.run_cycle())
    await eventually(lambda: r.simulator.in_flight > 0, what="a request in flight")
    return r, cycle


async def test_a_write_while_a_cycle_awaits_its_answer_costs_that_cycle_nothing(
    rig: RigBuilder,
) -> None:
    r, cycle = await _cycle_in_flight(rig)
    await _write(r, {"E1": None, "E9": _watch("E9")})
    stats = await cycle

    assert stats.failed_requests == 0
    changed = {change.event_id for change in await r.reads.changes_of()}
    assert changed == {"E2", "E3", "E4"}, "the removed event's answer is dropped, no other"
    assert stats.changes == 3
    r.simulator.latency = 0.0
    r.clock.advance(INTERVAL)
    await r.poller.run_cycle()
    rows = {row.event_id: row for row in await r.reads.event_rows()}
    assert rows["E9"].current == Availability(A, RN), "the added event is polled at the next claim"
    assert "E1" not in rows or rows["E1"].current == Availability(A, RN)


async def test_a_reload_while_a_cycle_awaits_its_answer_costs_that_cycle_nothing(
    rig: RigBuilder,
) -> None:
    r, cycle = await _cycle_in_flight(rig)
    r.poller.replace_watchlist({i: _watch(i) for i in ("E2", "E3", "E4")})
    stats = await cycle
    assert stats.failed_requests == 0
    assert {change.event_id for change in await r.reads.changes_of()} == {"E2", "E3", "E4"}


async def test_one_batch_that_cannot_be_recorded_costs_the_others_nothing(
    rig: RigBuilder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    r = await rig(ids=("E1", "E2", "E3", "E4"), batch_size=2, max_in_flight=1)
    for event_id in ("E1", "E2", "E3", "E4"):
        r.simulator.set(event_id, A, RN)
    await r.cycle()
    for event_id in ("E1", "E2", "E3", "E4"):
        r.simulator.set(event_id, F, RN)
    due_before = await r.due_times()
    real_detect = detect

    def broken_for_e1(state, reading, now, rules):  # type: ignore[no-untyped-def]
        if reading.event_id == "E1":
            raise RuntimeError("a bug in one batch's bookkeeping")
        return real_detect(state, reading, now, rules)

    monkeypatch.setattr(recorder_module, "detect", broken_for_e1)
    with caplog.at_level(logging.ERROR, logger="monitor.polling.poller"):
        stats = await r.poller.run_cycle()

    assert {change.event_id for change in await r.reads.changes_of()} == {"E3", "E4"}
    assert stats.changes == 2
    failed = [record for record in caplog.records if "could not be recorded" in record.message]
    assert len(failed) == 1, "logged once, naming its batch"
    due_after = await r.due_times()
    assert due_after["E1"] == due_before["E1"] + INTERVAL, "retried at its next due time"

    monkeypatch.setattr(recorder_module, "detect", real_detect)
    r.clock.now = due_after["E1"]
    await r.poller.run_cycle()
    assert {change.event_id for change in await r.reads.changes_of()} == {"E1", "E2", "E3", "E4"}


async def test_a_write_touches_only_the_batches_its_event_joins_or_leaves(
    rig: RigBuilder,
) -> None:
    r = await rig(ids=("E1", "E2", "E3", "E4", "E5"), batch_size=2)
    before = await _batches(r)
    assert sorted(size for _, size, _ in before.values()) == [1, 2, 2]

    await _write(r, {"E6": _watch("E6")})
    after = await _batches(r)
    (joined,) = [bid for bid, (_, _, members) in after.items() if "E6" in members]
    assert after[joined][1] == 2, "the batch with room took it"
    moved = {bid for bid in before if before[bid][0] != after[bid][0]}
    assert moved == {joined}, "no other batch's cache is invalidated"

    await _write(r, {"E7": _watch("E7")})
    grown = await _batches(r)
    assert len(grown) == len(after) + 1, "no batch had room: a new one, due now"

    await _write(r, {"E7": None})
    assert await _batches(r) == after, "a batch left empty goes"
    await _write(r, {"E1": _watch("E1", interval=INTERVAL * 2)})
    regrouped = await _batches(r)
    (home,) = [bid for bid, (_, _, members) in regrouped.items() if "E1" in members]
    async with r.engine.connect() as conn:
        interval = await conn.scalar(select(batches.c.interval_s).where(batches.c.id == home))
    assert interval == INTERVAL * 2, "a new interval is a batch of that interval"

    settled = await _batches(r)
    await _write(r, {"E1": _watch("E1", interval=INTERVAL * 2), "E2": _watch("E2")})
    assert await _batches(r) == settled, "applying the same write again changes nothing"


async def test_a_newly_watched_event_is_due_at_once(rig: RigBuilder) -> None:
    r = await rig(ids=("E1",), batch_size=2)
    async with r.engine.begin() as conn:
        await conn.execute(batches.update().values(next_due_at=r.clock() + 500))
    await _write(r, {"E2": _watch("E2")})
    assert (await r.due_times())["E1"] == r.clock(), "its batch is due now"
    async with r.engine.connect() as conn:
        assert await conn.scalar(select(changes.c.id)) is None


@pytest.mark.unit
@pytest.mark.parametrize(
    ("floor", "seen", "entries", "later", "taken", "floor_after"),
    [
        (0, set(), [(1, "A"), (2, "B")], 0.0, ["A", "B"], 2),
        (2, set(), [(3, "A"), (4, "A")], 0.0, ["A"], 4),
        # 4 committed before 3: 3 is waited for, 4 is not applied twice.
        (2, set(), [(4, "B")], 0.0, ["B"], 2),
        (2, {4}, [(4, "B")], 0.0, [], 2),
        (2, {4}, [(3, "A"), (4, "B")], 0.0, ["A"], 4),
        # A hole never filled (a rolled-back write) is given up after a while.
        (2, set(), [(4, "B")], HOLE_WAIT, ["B"], 4),
    ],
)
def test_the_log_cursor_applies_each_write_once_in_any_commit_order(  # noqa: PLR0917 - a table
    floor: int,
    seen: set[int],
    entries: list[tuple[int, str]],
    later: float,
    taken: list[str],
    floor_after: int,
) -> None:
    cursor = LogCursor(floor=floor, applied=set(seen))
    if later:
        cursor.take(entries, 0.0)
        assert cursor.take([], later) == []
    else:
        assert cursor.take(entries, 0.0) == taken
    assert cursor.floor == floor_after


async def test_every_change_is_stored_and_delivered_under_continuous_writes(
    make_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A slow upstream, a watch added and another removed through the API every 0.1 s, and
    statuses that each hold for several polls: every change is stored and delivered."""
    ids = [f"E{i:02d}" for i in range(20)]
    simulator = Simulator(api_key=API_KEY, latency=0.15)
    for event_id in [*ids, "W1", "W2"]:
        simulator.set(event_id, A, RN)
    async with receiver() as hook, serve(simulator) as upstream:
        config = make_config(
            ticketmaster={"base_url": upstream, "requests_per_second": 200, "batch_size": 5},
            polling={"interval": "1s"},
            server={"port": 0, "token": TOKEN},
            notifiers={"hook": {"type": "webhook", "url": hook.url}},
            events=[{"id": event_id} for event_id in ids],
        )
        with caplog.at_level(logging.INFO):
            async with (
                Monitor(config) as monitor,
                aiohttp.ClientSession(monitor.url, headers=AUTH) as http,
            ):
                await eventually(lambda: all(i in simulator.asked for i in ids), what="baselines")
                stop = asyncio.Event()

                async def write() -> None:
                    turn = 0
                    while not stop.is_set():
                        added, gone = ("W1", "W2") if turn % 2 else ("W2", "W1")
                        async with http.post("/api/watches", json={"id": added}) as response:
                            assert response.status in (201, 409), await response.text()
                        async with http.delete(f"/api/watches/{gone}") as response:
                            assert response.status in (204, 404), await response.text()
                        turn += 1
                        await asyncio.sleep(0.1)

                writing = asyncio.create_task(write())
                flips = [F, A, F]
                reads = monitor.parts.stores.reads
                for flipped, status in enumerate(flips, start=1):
                    for event_id in ids:
                        simulator.set(event_id, status, RN)

                    async def recorded(count: int = flipped) -> bool:
                        found = [len(await reads.changes_of(i)) for i in ids]
                        return all(changes == count for changes in found)

                    await eventually(recorded, within=10, what=f"every event {status}")
                stop.set()
                await writing
                await eventually(hook.received(len(ids) * len(flips)), within=10, what="all sent")
                for event_id in ids:
                    seen = [c.current.status for c in await reads.changes_of(event_id)]
                    assert seen == flips, event_id
    assert not [r for r in caplog.records if "poll cycle failed" in r.message]
    sent = {(b["data"]["event_id"], b["data"]["current"]["status"]) for b in hook.bodies()}
    assert sent == {(i, s.value) for i in ids for s in flips}


async def test_two_thousand_watches_added_through_the_api_skip_no_poll(
    make_config: ConfigFactory,
) -> None:
    ids = [f"E{i:02d}" for i in range(20)]
    added = [f"N{i:04d}" for i in range(2000)]
    simulator = Simulator(api_key=API_KEY)
    async with serve(simulator) as upstream:
        config = make_config(
            ticketmaster={"base_url": upstream, "requests_per_second": 500},
            polling={"interval": "1s"},
            server={"port": 0, "token": TOKEN},
            notifiers={"ops": {"type": "log"}},
            events=[{"id": event_id} for event_id in ids],
        )
        async with (
            Monitor(config) as monitor,
            aiohttp.ClientSession(monitor.url, headers=AUTH) as http,
        ):
            await eventually(lambda: all(i in simulator.asked for i in ids), what="baselines")
            simulator.longest_gap = 0.0

            async def add(share: list[str]) -> None:
                for event_id in share:
                    async with http.post("/api/watches", json={"id": event_id}) as response:
                        assert response.status == 201, await response.text()

            await asyncio.gather(*(add(added[i::4]) for i in range(4)))
            await eventually(
                lambda: all(i in simulator.asked for i in added), within=10, what="all polled"
            )
            assert simulator.longest_gap < 2.0, "no event missed a poll while watches were added"
            assert len(monitor.parts.poller.watchlist) == len(ids) + len(added)

            listed: list[str] = []
            link: str | None = "/api/watches?limit=700"
            while link is not None:
                async with http.get(link) as response:
                    page = WatchesPage.model_validate(await response.json())
                listed.extend(watch.id for watch in page.watches)
                link = page.next
            assert listed == sorted([*ids, *added]), "every watch once, in order, over pages"
            async with http.get("/api/watches", params={"after": "ZZZZ"}) as response:
                assert await response.json() == {"watches": [], "next": None}, "past the last"
