from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.models import Availability, ResaleStatus, Status
from monitor.store.repository import PollWrite, Repository, WatchEntry
from monitor.store.tables import deliveries, events, metadata, snapshots

NOW = 1_800_000_000.0


def at(now: float) -> Callable[[Sequence[str], float], dict[str, float]]:
    def schedule(event_ids: Sequence[str], _now: float) -> dict[str, float]:
        return dict.fromkeys(event_ids, now)

    return schedule


async def watch(repository: Repository, *ids: str, due: float = NOW) -> tuple[list[str], list[str]]:
    entries = [WatchEntry(i, f"Show {i}") for i in ids]
    return await repository.sync_watchlist(entries, at(due), NOW)


async def test_migrations_and_table_objects_agree(engine: AsyncEngine) -> None:
    def diff(connection: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []


async def test_watchlist_sync_adds_renames_and_retires_without_losing_history(
    repository: Repository,
) -> None:
    assert await watch(repository, "A", "B") == (["A", "B"], [])
    assert await watch(repository, "B", "C") == (["C"], ["A"])
    assert {r.event_id for r in await repository.event_rows()} == {"B", "C"}
    retired = await repository.event_row("A")
    assert retired is not None
    assert not retired.watched
    assert await watch(repository, "A", "B", "C") == ([], [])
    entries = [WatchEntry("A", "Renamed")]
    await repository.sync_watchlist(entries, at(NOW), NOW)
    row = await repository.event_row("A")
    assert row is not None
    assert row.name == "Renamed"


async def test_claims_take_due_events_once_until_the_lease_ends(repository: Repository) -> None:
    await watch(repository, "A", "B", "C")
    await repository.set_due({NOW + 100: ["C"]})
    first = await repository.claim_due(NOW, limit=10, lease_until=NOW + 30)
    assert sorted(s.event_id for s in first) == ["A", "B"]
    assert all(s.current is None and s.unknown_streak == 0 for s in first)
    assert await repository.claim_due(NOW + 29, limit=10, lease_until=NOW + 60) == []
    again = await repository.claim_due(NOW + 30, limit=1, lease_until=NOW + 60)
    assert len(again) == 1


async def test_concurrent_claims_never_share_an_event(repository: Repository) -> None:
    await watch(repository, *(f"E{i}" for i in range(200)))
    claims = await asyncio.gather(
        *(repository.claim_due(NOW, limit=25, lease_until=NOW + 30) for _ in range(10))
    )
    claimed = [s.event_id for claim in claims for s in claim]
    assert len(claimed) == 200
    assert len(set(claimed)) == 200


async def test_a_poll_write_is_stored_whole(repository: Repository, engine: AsyncEngine) -> None:
    await watch(repository, "A", "B")
    await repository.claim_due(NOW, limit=10, lease_until=NOW + 30)
    write = PollWrite(now=NOW + 1)
    write.refreshed[NOW + 61] = ["B"]
    write.updated.append(
        {
            "b_event_id": "A",
            "b_status": "FEW_TICKETS_LEFT",
            "b_resale_status": "UNKNOWN",
            "b_unknown_streak": 0,
            "b_seen_at": NOW + 1,
            "b_changed_at": NOW + 1,
            "b_snapshot_at": NOW + 1,
            "b_due_at": NOW + 61,
        }
    )
    write.snapshots.append(
        {
            "event_id": "A",
            "status": "FEW_TICKETS_LEFT",
            "resale_status": "UNKNOWN",
            "observed_at": NOW + 1,
        }
    )
    write.changes.append(
        {
            "id": "c1",
            "event_id": "A",
            "event_name": "Show A",
            "previous_status": "TICKETS_AVAILABLE",
            "previous_resale_status": "UNKNOWN",
            "status": "FEW_TICKETS_LEFT",
            "resale_status": "UNKNOWN",
            "observed_at": NOW + 1,
        }
    )
    write.deliveries.append(
        {
            "id": "d1",
            "change_id": "c1",
            "notifier": "ops",
            "state": "pending",
            "attempts": 0,
            "created_at": NOW + 1,
            "next_attempt_at": NOW + 1,
        }
    )
    await repository.save_poll(write)

    a, b = await repository.event_rows()
    assert a.current == Availability(Status.FEW_TICKETS_LEFT, ResaleStatus.UNKNOWN)
    assert (a.first_seen_at, a.last_changed_at, a.next_due_at) == (NOW + 1, NOW + 1, NOW + 61)
    assert (b.current, b.last_seen_at, b.next_due_at) == (None, NOW + 1, NOW + 61)
    (change,) = await repository.changes_of("A")
    assert change.previous == Availability(Status.TICKETS_AVAILABLE, ResaleStatus.UNKNOWN)
    assert change.changed == ("status",)
    assert [s for _, s in await repository.snapshots_of("A")] == [a.current]

    (delivery,) = await repository.claim_deliveries("ops", NOW + 2, limit=5, lease_until=NOW + 40)
    assert (delivery.id, delivery.attempt, delivery.change) == ("d1", 1, change)
    assert await repository.claim_deliveries("ops", NOW + 3, limit=5, lease_until=NOW + 40) == []
    await repository.record_attempt(
        "d1",
        attempted_at=NOW + 3,
        outcome="failed",
        status_code=503,
        error="HTTP 503",
        next_attempt_at=NOW + 10,
    )
    (retry,) = await repository.claim_deliveries("ops", NOW + 10, limit=5, lease_until=NOW + 40)
    assert (retry.id, retry.attempt) == ("d1", 2)
    await repository.record_attempt(
        "d1",
        attempted_at=NOW + 11,
        outcome="delivered",
        status_code=200,
        error=None,
        next_attempt_at=None,
    )
    (row,) = await repository.list_deliveries()
    assert (row.state, row.attempts, row.finished_at) == ("delivered", 2, NOW + 11)

    async with engine.connect() as connection:
        counts = [
            await connection.scalar(select(func.count()).select_from(table))
            for table in (events, snapshots, deliveries)
        ]
    assert counts == [2, 1, 1]
