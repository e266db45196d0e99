"""The maintenance commands, run as a user runs them."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import yaml
from sqlalchemy import select, update

from monitor.devtools.simulator import Simulator, serve
from monitor.models import Health, Outcome, Quota, ResaleStatus, Status, UpstreamStatus
from monitor.polling.watchlist import Watch
from monitor.store.engine import create_engine, upgrade
from monitor.store.outbox import Attempt, Outbox
from monitor.store.repository import Repository
from monitor.store.tables import batches, events
from tests.conftest import API_KEY, change_with_delivery
from tests.e2e import receiver, run_cli


def write_config(tmp_path: Path, hook: str) -> Path:
    config = tmp_path / "monitor.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ticketmaster": {"api_key": API_KEY},
                "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"},
                "notifiers": {
                    "ops": {
                        "type": "webhook",
                        "url": hook,
                        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    }
                },
                "events": [{"id": "E1"}],
            }
        )
    )
    return config


async def test_notify_test_sends_a_marked_message_and_prints_the_reply(tmp_path: Path) -> None:
    async with receiver() as hook:
        code, out, err = await run_cli(
            "notify", "test", "ops", "--config", str(write_config(tmp_path, hook.url))
        )
        assert (code, out.strip(), err) == (0, "ops: sent (HTTP 204)", "")
        ((headers, body),) = hook.requests
    message = json.loads(body)
    assert message["type"] == "inventory.test", "no receiver takes it for a change"
    assert message["data"]["test"] is True
    assert "test message" in message["data"]["event_name"]
    assert message["data"]["current"]["status"] == "TICKETS_AVAILABLE", "a realistic sample"
    assert headers["webhook-signature"].startswith("v1,")


async def test_notify_test_reports_a_failure_and_names_unknown_notifiers(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, "http://127.0.0.1:9/hook"))
    code, out, _ = await run_cli("notify", "test", "ops", "--config", config)
    assert code == 1
    assert out.strip() == "ops: failed: connection refused by 127.0.0.1:9"
    code, _, err = await run_cli("notify", "test", "pager", "--config", config)
    assert (code, err.strip()) == (2, "error: no notifier is named 'pager' (known: ops)")


async def test_dead_deliveries_are_listed_and_replayed(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, "http://127.0.0.1:9/hook"))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
    try:
        await upgrade(engine)
        repository = Repository(engine)
        write = change_with_delivery(1, at=1.0, previous=None)
        write.changes[0] = dataclasses.replace(write.changes[0], event_name="Blur: Live")
        await repository.save_poll(write)
        outbox = Outbox(engine)
        await outbox.record_attempts([Attempt("d1", 2.0, Outcome.DEAD, 410, "HTTP 410 (gone)")])

        code, out, _ = await run_cli("deliveries", "--dead", "--config", config)
        assert code == 0
        assert "d1" in out
        assert "Blur: Live (E1)" in out, "the event by its name"
        assert "HTTP 410 (gone)" in out
        code, out, _ = await run_cli("deliveries", "--config", config, "retry", "d1")
        assert code == 0
        assert out.startswith("1 dead delivery queued again"), "in the singular"
        (row,) = await outbox.list_deliveries()
        assert row.state == "pending"
        code, out, _ = await run_cli("deliveries", "--dead", "--config", config)
        assert out.strip() == "no dead deliveries"
    finally:
        await engine.dispose()


def live_config(tmp_path: Path, base_url: str, key: str = API_KEY, events: int = 3) -> Path:
    config = tmp_path / "live.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ticketmaster": {"base_url": base_url, "api_key": key, "batch_size": 2},
                "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"},
                "polling": {"interval": "30s"},
                "notifiers": {"console": {"type": "log"}},
                "events": [{"id": f"E{i}"} for i in range(events)],
            }
        )
    )
    return config


async def test_check_prints_the_quota_plan_and_the_intervals_that_fit(tmp_path: Path) -> None:
    config = live_config(tmp_path, "http://127.0.0.1:9", events=10)
    code, out, err = await run_cli("check", "--config", str(config))
    assert code == 0, err
    # 5 batches of 2 every 30s: 14,400 requests a day against the default 5,000, and the
    # details of the 10 events in one Discovery search a day.
    assert "quota:     14,401 requests a day of 5,000 (288%), at most 5 a second" in out
    assert "of which 1.0 for event details (Discovery, every 1d)" in out
    assert "warning: the watchlist needs 14,401 requests a day" in err
    assert "intervals that fit: 30s -> 96.1s" in err


async def test_check_counts_the_watches_the_database_adds_to_the_file(tmp_path: Path) -> None:
    """A watch added from the command line is polled like the file's own: the plan `check`
    prints is the daemon's, not the file's alone."""
    config = live_config(tmp_path, "http://127.0.0.1:9", events=10)
    code, out, err = await run_cli("check", "--config", str(config))
    assert code == 0, err
    assert "events:    10\n" in out
    for event_id in ("X1", "X2"):
        code, _, err = await run_cli("watch", "add", event_id, "--config", str(config))
        assert code == 0, err
    code, _, err = await run_cli("watch", "pause", "E0", "--config", str(config))
    assert code == 0, err

    code, out, err = await run_cli("check", "--config", str(config))
    assert code == 0, err
    assert "events:    11 (9 of the file's 10, 2 from the database)" in out
    # 6 batches of 2 every 30s, and the details of 11 events in one Discovery search a day.
    assert "quota:     17,281 requests a day of 5,000" in out


async def test_check_live_reports_the_key_quota_and_unknown_ids(tmp_path: Path) -> None:
    simulator = Simulator(api_key=API_KEY, quota=5000)
    simulator.set("E1", Status.UNKNOWN, ResaleStatus.UNKNOWN)
    async with serve(simulator) as url:
        code, out, err = await run_cli(
            "check", "--live", "--config", str(live_config(tmp_path, url))
        )
        assert code == 0, err
        assert "live: the API key works (2 requests" in out
        assert "quota left: 4,998 of 5,000" in out
        assert "checked:    3 of 3 watched events" in out
        assert "E1: answered UNKNOWN, probably an invalid event ID" in out
        assert "E0:" not in out

        wrong = live_config(tmp_path, url, key="a-key-without-access")
        code, out, err = await run_cli("check", "--live", "--config", str(wrong))
        assert code == 1
        assert "live: the API key is refused: " in out
        assert "a-key-without-access" not in out + err
    assert simulator.requests == 3


async def test_status_says_when_polling_is_paused_for_the_quota(tmp_path: Path) -> None:
    config = live_config(tmp_path, "http://127.0.0.1:9")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
    await upgrade(engine)
    await Repository(engine).save_upstream(
        UpstreamStatus(
            Health.QUOTA_EXHAUSTED,
            since=1_800_000_000.0,
            paused_until=1_800_003_600.0,
            quota=Quota(5000, 0, 1_800_003_600.0),
        )
    )
    await engine.dispose()
    code, out, err = await run_cli("status", "--config", str(config))
    assert code == 0, err
    assert out.splitlines()[0] == (
        "upstream: the API key's daily quota is used up; since 2027-01-15T08:00:00Z; "
        "next try 2027-01-15T09:00:00Z; quota left 0 of 5,000 (resets 2027-01-15T09:00:00Z)"
    )


async def test_status_says_when_each_event_is_polled_next(tmp_path: Path) -> None:
    config = live_config(tmp_path, "http://127.0.0.1:9")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
    await upgrade(engine)
    repository = Repository(engine, replica="r1")
    now = time.time()
    numbers = iter(range(10))
    watches = [Watch("E1", "Soon", 60.0), Watch("E2", "Later", 3600.0), Watch("E3", "Now", 5.0)]
    await repository.sync_watchlist(watches, 100, now, lambda: f"b{next(numbers)}")
    async with engine.begin() as connection:
        for event_id, due_in in (("E1", 42.0), ("E2", 5400.0), ("E3", -1.0)):
            batch_id = select(events.c.batch_id).where(events.c.event_id == event_id)
            await connection.execute(
                update(batches)
                .where(batches.c.id == batch_id.scalar_subquery())
                .values(next_due_at=now + due_in)
            )
    claimed = await repository.claim_due(now, 10, now + 30, 1)
    assert [b.id for request in claimed.requests for b in request], "E3 is being polled"
    await engine.dispose()
    code, out, err = await run_cli("status", "--wide", "--config", str(config))
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "NEXT POLL" in lines["EVENT"]
    assert lines["E1"].rstrip().endswith(("in 42s", "in 41s"))
    assert lines["E2"].rstrip().endswith(("in 1h30m", "in 1h29m59s"))
    assert lines["E3"].rstrip().endswith(" now")
