"""Retention prunes in small batches; export writes the timeline of changes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import yaml
from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.models import Outcome
from monitor.store.engine import create_engine, upgrade
from monitor.store.outbox import Attempt, Outbox
from monitor.store.repository import Repository
from monitor.store.retention import prune
from monitor.store.tables import changes, deliveries, delivery_attempts, snapshots
from tests.conftest import API_KEY, change_with_delivery
from tests.e2e import run_cli

DAY = 86400.0
NOW = 1_800_000_000.0


async def count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


async def test_old_snapshots_go_in_batches_and_changes_stay_unless_asked(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            insert(snapshots),
            [
                {
                    "event_id": f"E{i % 7}",
                    "status": "TICKETS_AVAILABLE",
                    "resale_status": "UNKNOWN",
                    "observed_at": NOW - age * DAY,
                }
                for i, age in enumerate([100] * 2500 + [10] * 40)
            ],
        )
    repository = Repository(engine)
    await repository.save_poll(change_with_delivery(1, at=NOW - 400 * DAY))
    pruned = await prune(engine, NOW, snapshots_after=90 * DAY, changes_after=None, batch=1000)
    assert (pruned.snapshots, pruned.changes) == (2500, 0)
    assert await count(engine, snapshots) == 40
    assert await count(engine, changes) == 1


async def test_old_changes_go_with_their_deliveries_but_never_while_one_is_pending(
    engine: AsyncEngine,
) -> None:
    repository = Repository(engine)
    await repository.save_poll(change_with_delivery(1, at=NOW - 400 * DAY))
    await repository.save_poll(change_with_delivery(2, at=NOW - 400 * DAY))
    await repository.save_poll(change_with_delivery(3, at=NOW - DAY))
    await Outbox(engine).record_attempts([Attempt("d1", NOW - 400 * DAY, Outcome.DELIVERED)])
    pruned = await prune(engine, NOW, snapshots_after=None, changes_after=365 * DAY)
    assert pruned.changes == 1
    async with engine.connect() as connection:
        left = set((await connection.execute(select(changes.c.id))).scalars())
        kept_deliveries = set((await connection.execute(select(deliveries.c.id))).scalars())
    assert left == {"c2", "c3"}, "c2's delivery is still pending"
    assert kept_deliveries == {"d2", "d3"}
    assert await count(engine, delivery_attempts) == 0


async def test_export_writes_the_timeline_as_csv_and_json(tmp_path: Path) -> None:
    database = tmp_path / "monitor.db"
    config = tmp_path / "monitor.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ticketmaster": {"api_key": API_KEY},
                "database": {"url": f"sqlite+aiosqlite:///{database}"},
            }
        )
    )
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    await upgrade(engine)
    repository = Repository(engine)
    await repository.save_poll(change_with_delivery(1, at=NOW, event_id="E1"))
    await repository.save_poll(change_with_delivery(2, at=NOW + 60, event_id="E2", previous=None))
    await engine.dispose()

    code, out, err = await run_cli("export", "--config", str(config))
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["observed_at"], r["event_id"], r["previous_status"], r["status"]) for r in rows] == [
        ("2027-01-15T08:00:00Z", "E1", "TICKETS_NOT_AVAILABLE", "TICKETS_AVAILABLE"),
        ("2027-01-15T08:01:00Z", "E2", "", "TICKETS_AVAILABLE"),
    ]

    code, out, err = await run_cli(
        "export", "--format", "json", "--event", "E2", "--since", "2027-01-15T08:00:30",
        "--config", str(config),
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out) == [
        {
            "observed_at": "2027-01-15T08:01:00Z",
            "event_id": "E2",
            "event_name": None,
            "previous_status": None,
            "status": "TICKETS_AVAILABLE",
            "previous_resale_status": None,
            "resale_status": "TICKETS_NOT_AVAILABLE",
        }
    ]
    code, out, err = await run_cli("export", "--since", "last week", "--config", str(config))
    assert (code, out) == (2, "")
    assert err.strip() == (
        "error: --since: expected a duration such as 1h or 7d, or an ISO 8601 date-time, "
        "got 'last week'"
    )
