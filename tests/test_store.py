from __future__ import annotations

import asyncio
import itertools

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.models import Availability, Change, EventState, Outcome, ResaleStatus, Status
from monitor.polling.watchlist import Watch
from monitor.store.engine import (
    HEAD_REVISION,
    alembic_config,
    create_engine,
    current_revision,
    upgrade,
)
from monitor.store.outbox import Attempt, Outbox
from monitor.store.reads import Reads
from monitor.store.records import (
    BatchPolled,
    ClaimedBatch,
    EventUnread,
    EventUpdate,
    NewDelivery,
    NewSnapshot,
    PollWrite,
)
from monitor.store.replicas import HEARTBEAT, STALE_AFTER, SWEEP_EVERY, Replicas
from monitor.store.repository import Claim, Repository
from monitor.store.tables import batches, deliveries, events, metadata, snapshots, upstream
from tests.support import RU, F, statements

NOW = 1_800_000_000.0
AVAILABLE = Availability(Status.TICKETS_AVAILABLE, ResaleStatus.UNKNOWN)


def flat(claim: Claim) -> list[ClaimedBatch]:
    return [batch for request in claim.requests for batch in request]


async def watch(
    repository: Repository, *ids: str, interval: float = 60.0, batch_size: int = 100
) -> tuple[list[str], list[str]]:
    numbers = itertools.count()
    return await repository.sync_watchlist(
        [Watch(i, f"Show {i}", interval) for i in ids],
        batch_size,
        NOW,
        lambda: f"batch{next(numbers)}-{ids[0] if ids else ''}",
    )


async def all_due(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(update(batches).values(next_due_at=NOW))


def _migrate(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def _built_by_migrations(engine: AsyncEngine) -> None:
    """The schema as the migrations build it, one by one from the first."""
    await _empty(engine)
    async with engine.begin() as connection:
        await connection.run_sync(_migrate)


def _forbid_alembic(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    def no_alembic() -> None:
        raise AssertionError(f"Alembic was asked to {when}")

    monkeypatch.setattr("monitor.store.engine.alembic_config", no_alembic)


def _shape(connection: Connection) -> dict[str, object]:
    """What a database is made of, in an order that does not depend on how it was built:
    tables, columns, keys and indexes, and the rows the schema comes with."""
    schema = inspect(connection)
    shape: dict[str, object] = {}
    for table in schema.get_table_names():
        shape[table] = (
            sorted(
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in schema.get_columns(table)
            ),
            sorted(schema.get_pk_constraint(table)["constrained_columns"]),
            sorted(
                (tuple(i["column_names"]), bool(i["unique"]), str(i["name"]))
                for i in schema.get_indexes(table)
            ),
            sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], str(f["options"]))
                for f in schema.get_foreign_keys(table)
            ),
        )
    shape["rows"] = (
        connection.execute(select(upstream)).all(),
        connection.exec_driver_sql("SELECT version_num FROM alembic_version").all(),
    )
    return shape


async def _empty(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            await connection.exec_driver_sql("CREATE SCHEMA public")
        else:
            await connection.run_sync(metadata.drop_all)
            await connection.exec_driver_sql("DROP TABLE alembic_version")


async def test_migrations_and_table_objects_agree(engine: AsyncEngine) -> None:
    def diff(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    await _built_by_migrations(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []


async def test_a_new_database_is_what_the_migrations_build(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first start builds the schema from the table objects, without Alembic; what it
    builds must be what the migrations would have, so that the next migration applies."""
    await _built_by_migrations(engine)
    async with engine.connect() as connection:
        migrated = await connection.run_sync(_shape)

    await _empty(engine)
    _forbid_alembic(monkeypatch, "build an empty database")
    await upgrade(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(_shape) == migrated


@pytest.mark.unit
def test_the_head_revision_known_to_the_code_is_the_newest_migration() -> None:
    newest = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert newest == HEAD_REVISION, "bump store.engine.HEAD_REVISION with each migration"


async def test_an_upgraded_database_is_not_handed_to_alembic(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _forbid_alembic(monkeypatch, "migrate a database at the head revision")
    await upgrade(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(current_revision) == HEAD_REVISION


async def test_watchlist_sync_adds_renames_and_retires_without_losing_history(
    repository: Repository,
) -> None:
    assert await watch(repository, "A", "B") == (["A", "B"], [])
    assert await watch(repository, "B", "C") == (["C"], ["A"])
    assert {r.event_id for r in await Reads(repository.engine).event_rows()} == {"B", "C"}
    retired = await Reads(repository.engine).event_row("A")
    assert retired is not None
    assert not retired.watched
    assert retired.next_due_at is None
    assert await watch(repository, "A", "B", "C") == ([], [])
    await repository.sync_watchlist([Watch("A", "Renamed", 60.0)], 100, NOW, lambda: "x")
    row = await Reads(repository.engine).event_row("A")
    assert row is not None
    assert row.name == "Renamed"


async def test_claims_take_due_batches_once_until_the_lease_ends(
    repository: Repository, engine: AsyncEngine
) -> None:
    await watch(repository, "A", "B", "C", batch_size=1)
    await all_due(engine)
    async with engine.begin() as connection:
        await connection.execute(
            update(batches).where(batches.c.id == "batch2-A").values(next_due_at=NOW + 100)
        )
    first = flat(await repository.claim_due(NOW, limit=10, lease_until=NOW + 30, capacity=1))
    assert len(first) == 2
    states = await repository.load_states([b.id for b in first])
    assert sorted(eid for members in states.values() for eid in members) == ["A", "B"]
    assert all(
        s == EventState(None, 0, None, read_in_last_poll=False)
        for members in states.values()
        for s in members.values()
    )
    assert (
        flat(await repository.claim_due(NOW + 29, limit=10, lease_until=NOW + 60, capacity=1)) == []
    )
    assert (
        len(flat(await repository.claim_due(NOW + 30, limit=1, lease_until=NOW + 60, capacity=1)))
        == 1
    )


async def test_concurrent_claims_never_share_a_batch(
    repository: Repository, engine: AsyncEngine
) -> None:
    await watch(repository, *(f"E{i}" for i in range(200)), batch_size=2)
    await all_due(engine)
    claims = await asyncio.gather(
        *(repository.claim_due(NOW, limit=15, lease_until=NOW + 30, capacity=2) for _ in range(10))
    )
    claimed = [b.id for claim in claims for b in flat(claim)]
    assert len(claimed) == 100
    assert len(set(claimed)) == 100


async def test_a_poll_write_is_stored_whole(repository: Repository, engine: AsyncEngine) -> None:
    await watch(repository, "A", "B", "C")
    (batch,) = flat(
        await repository.claim_due(NOW + 60, limit=10, lease_until=NOW + 90, capacity=1)
    )
    change = Change("c1", "A", "Show A", Availability(F, RU), AVAILABLE, NOW + 1)
    write = PollWrite(
        updated=[EventUpdate("A", AVAILABLE, 0, NOW + 1, NOW + 1, NOW + 1)],
        unread=[EventUnread("C", None)],
        snapshots=[NewSnapshot("A", AVAILABLE, NOW + 1)],
        changes=[change],
        deliveries=[NewDelivery("d1", "c1", "ops", NOW + 1, 0.0)],
        polled=[BatchPolled(batch.id, NOW + 2, NOW + 62, revised=True)],
    )
    await repository.save_poll(write)

    outbox = Outbox(engine)
    rows = {row.event_id: row for row in await Reads(repository.engine).event_rows()}
    assert rows["A"].current == AVAILABLE
    assert (rows["A"].first_seen_at, rows["A"].last_changed_at) == (NOW + 1, NOW + 1)
    assert rows["A"].last_seen_at == NOW + 2, "read in the batch's last poll"
    assert rows["B"].last_seen_at is None, "never read"
    assert rows["C"].last_seen_at is None, "left out of the answer"
    assert {row.next_due_at for row in rows.values()} == {NOW + 62}
    (claimed,) = flat(
        await repository.claim_due(NOW + 62, limit=10, lease_until=NOW + 90, capacity=1)
    )
    assert claimed.version == batch.version + 1
    assert claimed.last_polled_at == NOW + 2

    (change,) = await Reads(repository.engine).changes_of("A")
    assert change.previous == Availability(Status.FEW_TICKETS_LEFT, ResaleStatus.UNKNOWN)
    assert change.changed == ("status",)
    assert [s for _, s in await Reads(repository.engine).snapshots_of("A")] == [AVAILABLE]

    ((delivery, *_),) = await outbox.claim_deliveries("ops", NOW + 2, limit=5, lease_until=NOW + 40)
    assert (delivery.id, delivery.attempt, delivery.change) == ("d1", 1, change)
    assert await outbox.claim_deliveries("ops", NOW + 3, limit=5, lease_until=NOW + 40) == []
    await outbox.record_attempts(
        [Attempt("d1", NOW + 3, Outcome.FAILED, 503, "HTTP 503", NOW + 10)]
    )
    (retried,) = await outbox.claim_deliveries("ops", NOW + 10, limit=5, lease_until=NOW + 40)
    assert (retried.delivery.id, retried.delivery.attempt) == ("d1", 2)
    await outbox.record_attempts([Attempt("d1", NOW + 11, Outcome.DELIVERED, 200)])
    (row,) = await outbox.list_deliveries()
    assert (row.state, row.attempts, row.finished_at) == ("delivered", 2, NOW + 11)

    async with engine.connect() as connection:
        counts = [
            await connection.scalar(select(func.count()).select_from(table))
            for table in (events, snapshots, deliveries)
        ]
    assert counts == [3, 1, 1]


async def test_sources_and_regions_get_batches_of_their_own(repository: Repository) -> None:
    partitions = ["ticketmaster/US", "ticketmaster/GB", "tmr/US", ""]
    entries = [
        Watch(f"E{i}", None, 60.0, partition=partitions[i % len(partitions)]) for i in range(40)
    ]
    numbers = itertools.count()
    await repository.sync_watchlist(entries, 100, NOW, lambda: f"b{next(numbers)}")
    async with repository.engine.connect() as connection:
        rows = (
            await connection.execute(select(events.c.event_id, batches.c.partition).join(batches))
        ).all()
    wanted = {entry.event_id: entry.partition for entry in entries}
    assert dict(rows) == wanted
    async with repository.engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(batches)) == 4


async def test_replicas_count_each_other_and_leave(engine: AsyncEngine) -> None:
    first, second = Replicas(engine, "r1"), Replicas(engine, "r2")
    assert await first.beat(NOW) == 1
    assert await second.beat(NOW + 1) == 2
    assert await first.beat(NOW + HEARTBEAT) == 2
    assert await first.beat(NOW + 1 + STALE_AFTER) == 2, "r2 is late, not yet silent"
    assert await first.beat(NOW + 2 + STALE_AFTER) == 1, "r2 has missed three beats"
    await second.beat(NOW + 3 + STALE_AFTER)
    await second.leave(NOW + 3 + STALE_AFTER)
    assert await first.beat(NOW + 4 + STALE_AFTER) == 1


async def test_the_batches_of_a_silent_replica_are_released_within_three_beats(
    engine: AsyncEngine,
) -> None:
    await watch(Repository(engine), *(f"E{i}" for i in range(6)), batch_size=2)
    first, second = Replicas(engine, "r1"), Replicas(engine, "r2")
    await first.beat(NOW + 60)
    await second.beat(NOW + 60)
    lease = NOW + 90
    taken = flat(await Repository(engine, replica="r2").claim_due(NOW + 60, 2, lease, 2))
    assert len(taken) == 2
    ours = Repository(engine, replica="r1")
    assert len(flat(await ours.claim_due(NOW + 60, 10, lease, 2))) == 1, "the rest, not r2's"
    await ours.save_poll(PollWrite())
    await first.beat(NOW + 60 + STALE_AFTER)
    assert flat(await ours.claim_due(NOW + 61, 10, lease, 2)) == [], "r2 may just be slow"
    await first.beat(NOW + 61 + STALE_AFTER)  # three beats and a second of silence from r2
    released = flat(await ours.claim_due(NOW + 61 + STALE_AFTER, 10, lease, 2))
    assert sorted(b.id for b in released) == sorted(b.id for b in taken)


async def test_a_beat_that_finds_nothing_new_costs_two_statements(engine: AsyncEngine) -> None:
    first, second = Replicas(engine, "r1"), Replicas(engine, "r2")
    await first.beat(NOW)
    await second.beat(NOW)
    with statements(engine) as ran:
        await first.beat(NOW + 2)
    assert len(ran) == 2, ran


async def test_a_claim_no_replica_ever_announced_is_released_by_a_later_sweep(
    engine: AsyncEngine,
) -> None:
    await watch(Repository(engine), "A", "B")
    replica = Replicas(engine, "r1")
    await replica.beat(NOW + 50)
    (batch,) = flat(await Repository(engine, replica="ghost").claim_due(NOW + 60, 10, NOW + 600, 1))
    await replica.beat(NOW + 61)
    assert flat(await Repository(engine).claim_due(NOW + 62, 10, NOW + 90, 1)) == []
    await replica.beat(NOW + 50 + SWEEP_EVERY)
    (again,) = flat(await Repository(engine).claim_due(NOW + 50 + SWEEP_EVERY, 10, NOW + 900, 1))
    assert again.id == batch.id


async def test_a_replica_that_stops_hands_back_its_claims(engine: AsyncEngine) -> None:
    await watch(Repository(engine), "A", "B")
    replica = Replicas(engine, "r1")
    await replica.beat(NOW)
    (batch,) = flat(await Repository(engine, replica="r1").claim_due(NOW + 60, 10, NOW + 90, 1))
    await replica.leave(NOW + 61)
    (again,) = flat(await Repository(engine, replica="r2").claim_due(NOW + 61, 10, NOW + 90, 1))
    assert again.id == batch.id


@pytest.mark.postgres
async def test_replicas_starting_together_migrate_one_at_a_time(postgres_url: str) -> None:
    engines = [create_engine(postgres_url) for _ in range(4)]
    async with engines[0].begin() as connection:
        await connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        await connection.exec_driver_sql("CREATE SCHEMA public")
    try:
        await asyncio.gather(*(upgrade(engine) for engine in engines))
        async with engines[1].connect() as connection:
            assert await connection.scalar(select(func.count()).select_from(batches)) == 0
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_live_replica_renews_the_claims_of_its_requests_in_flight(
    engine: AsyncEngine,
) -> None:
    await watch(Repository(engine), "A")
    replica = Replicas(engine, "r1", lease=30.0)
    await replica.beat(NOW + 60)
    (batch,) = flat(await Repository(engine, replica="r1").claim_due(NOW + 60, 10, NOW + 90, 1))
    await replica.beat(NOW + 80)
    assert (
        flat(await Repository(engine, replica="r2").claim_due(NOW + 95, 10, NOW + 200, 1)) == []
    ), "still in flight at r1, which is alive: its claim was renewed to NOW + 110"
    assert [
        b.id for b in flat(await Repository(engine).claim_due(NOW + 111, 10, NOW + 200, 1))
    ] == [batch.id]
