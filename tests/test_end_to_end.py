"""The real daemon process against the simulator and a real webhook receiver."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from pathlib import Path

import yaml

from monitor.devtools.simulator import Simulator, serve
from tests.conftest import API_KEY
from tests.e2e import daemon, daemon_config, receiver, run_cli
from tests.support import RA, RN, A, F, eventually


def write_config(path: Path, upstream: str, hook: str, database: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "ticketmaster": {
                    "base_url": upstream,
                    "api_key": "${E2E_KEY:-" + API_KEY + "}",
                    "batch_size": 2,
                },
                "database": {"url": f"sqlite+aiosqlite:///{database}"},
                "server": {"port": 0},
                "polling": {"interval": "1s"},
                "notifiers": {"ops": {"type": "webhook", "url": hook}, "console": {"type": "log"}},
                "events": [
                    {"id": "E1", "name": "Eras Tour — Night 1", "notify": ["ops", "console"]},
                    {"id": "E2", "name": "Eras Tour — Night 2"},
                    {"id": "E3", "notify": ["ops"]},
                ],
            },
            allow_unicode=True,
            sort_keys=False,
        )
    )
    return path


async def test_exactly_one_webhook_per_change_with_the_contract_body(tmp_path: Path) -> None:
    simulator = Simulator(api_key=API_KEY)
    for event_id in ("E1", "E2", "E3"):
        simulator.set(event_id, A, RN)
    database = tmp_path / "monitor.db"
    async with serve(simulator) as upstream, receiver() as hook:
        config = write_config(tmp_path / "monitor.yaml", upstream, hook.url, database)
        async with daemon(config) as running:
            await eventually(lambda: simulator.requests >= 4, what="the first polls")
            flips = [("E1", F, RN), ("E2", A, RA), ("E1", A, RN)]
            for count, (event_id, status, resale) in enumerate(flips, start=1):
                simulator.set(event_id, status, resale)
                await eventually(hook.received(count), what=f"webhook {count}")
            polled = simulator.requests
            await eventually(lambda: simulator.requests >= polled + 6, what="more polls")
            assert await running.stop() == 0

    assert len(hook.requests) == 3, "one webhook per change, none for the baseline"
    bodies = hook.bodies()
    assert [b["data"]["event_id"] for b in bodies] == ["E1", "E2", "E1"]
    first = bodies[0]
    assert set(first) == {"type", "timestamp", "data"}
    assert first["type"] == "inventory.changed"
    assert first["timestamp"].endswith("Z")
    assert set(first["data"]) == {
        "change_id",
        "event_id",
        "event_name",
        "previous",
        "current",
        "changed",
        "observed_at",
        "event",
        "kind",
    }
    assert first["data"]["event_name"] == "Eras Tour — Night 1"
    event = first["data"]["event"]
    assert (event["id"], event["name"]) == ("E1", "Eras Tour — Night 1")
    assert set(event) == {"id", "name", "starts_at", "timezone", "venue", "url", "lifecycle"}
    assert first["data"]["previous"] == {
        "status": "TICKETS_AVAILABLE",
        "resale_status": "TICKETS_NOT_AVAILABLE",
    }
    assert first["data"]["current"] == {
        "status": "FEW_TICKETS_LEFT",
        "resale_status": "TICKETS_NOT_AVAILABLE",
    }
    assert first["data"]["changed"] == ["status"]
    assert bodies[1]["data"]["changed"] == ["resale_status"]
    assert len({h["webhook-id"] for h, _ in hook.requests}) == 3
    assert len({b["data"]["change_id"] for b in bodies}) == 3

    log = running.log
    assert "Eras Tour — Night 1 (E1): status TICKETS_AVAILABLE → FEW_TICKETS_LEFT" in log
    assert "stopped" in log
    assert "Traceback" not in log
    assert API_KEY not in log
    with sqlite3.connect(database) as db:
        dump = "\n".join(db.iterdump())
    assert API_KEY not in dump

    code, out, err = await run_cli("status", "--config", str(config))
    assert code == 0, err
    assert "E1" in out
    assert "Eras Tour — Night 2" in out
    assert "On sale" in out, "statuses in words, as on the dashboard"
    assert max(map(len, out.splitlines()[2:])) <= 100, "it fits 100 columns"
    code, out, err = await run_cli("status", "--wide", "--config", str(config))
    assert "TICKETS_AVAILABLE" in out, "and the codes, wide"
    code, out, err = await run_cli("history", "E1", "--config", str(config))
    assert code == 0, err
    assert "TICKETS_AVAILABLE → FEW_TICKETS_LEFT" in out
    assert "FEW_TICKETS_LEFT → TICKETS_AVAILABLE" in out
    assert API_KEY not in out + err


async def test_a_bad_config_stops_the_daemon_before_it_starts(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text("ticketmaster:\n  api_key: k\nevents:\n  - id: E1\n    interval: soon\n")
    code, out, err = await run_cli("run", "--config", str(config))
    assert code == 2
    assert err.strip() == (
        f"{config}:5: events[0].interval: "
        "invalid duration 'soon': use a number with s, m, h or d, e.g. 2h"
    )
    assert out == ""


async def test_check_summarises_a_valid_config(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "monitor.yaml", "http://127.0.0.1:9", "http://127.0.0.1:9/h", tmp_path / "m.db"
    )
    code, out, err = await run_cli("check", "--config", str(config))
    assert code == 0, err
    assert "events:    3" in out
    assert "intervals: 1s" in out
    assert "notifier:  ops (webhook), 3 events" in out
    assert "notifier:  console (log), 2 events" in out


async def test_a_delivery_in_flight_survives_sigkill(tmp_path: Path) -> None:
    simulator = Simulator(api_key=API_KEY)
    simulator.set("E1", A, RN)
    async with serve(simulator) as upstream, receiver() as hook:
        config = daemon_config(
            tmp_path / "monitor.yaml",
            upstream,
            [{"id": "E1"}],
            notifiers={"ops": {"type": "webhook", "url": hook.url, "timeout": "500ms"}},
        )
        hook.hang = asyncio.Event()
        async with daemon(config) as first:
            await eventually(lambda: simulator.requests >= 2, what="the baseline")
            simulator.set("E1", F, RN)
            await eventually(hook.received(1), what="the delivery in flight")
            assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
        hook.hang.set()
        hook.hang = None
        async with daemon(config) as second:
            await eventually(hook.received(2), within=10, what="the delivery after the restart")
            assert await second.stop() == 0
    (first_headers, first_body), (second_headers, second_body) = hook.requests
    assert first_headers["webhook-id"] == second_headers["webhook-id"]
    assert first_body == second_body
    assert json.loads(second_body)["data"]["current"]["status"] == "FEW_TICKETS_LEFT"
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        assert db.execute("SELECT count(*) FROM changes").fetchone() == (1,)
        assert db.execute("SELECT state FROM deliveries").fetchall() == [("delivered",)]


async def test_check_never_prints_the_database_password(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ticketmaster": {"api_key": API_KEY},
                "database": {
                    "url": "postgresql+asyncpg://monitor:db-pass-4711@db.example.com/monitor"
                },
            }
        )
    )
    code, out, err = await run_cli("check", "--config", str(config))
    assert code == 0, err
    assert "db.example.com" in out
    assert "db-pass-4711" not in out + err


async def test_json_logs_carry_event_ids_and_notifier_names_and_no_secret(
    tmp_path: Path,
) -> None:
    simulator = Simulator(api_key=API_KEY)
    simulator.set("E1", A, RN)
    async with serve(simulator) as upstream:
        config = daemon_config(
            tmp_path / "monitor.yaml", upstream, [{"id": "E1"}], logging={"format": "json"}
        )
        async with daemon(config) as running:
            await eventually(lambda: simulator.requests >= 2, what="the baseline")
            simulator.set("E1", F, RN)
            await eventually(lambda: "FEW_TICKETS_LEFT" in running.log, what="the change line")
            assert await running.stop() == 0
    entries = [json.loads(line) for line in running.log.splitlines() if line.strip()]
    (change,) = [e for e in entries if e["logger"] == "monitor.changes"]
    assert (change["event_id"], change["notifier"]) == ("E1", "console")
    assert {"time", "level", "message"} <= set(change)
    assert API_KEY not in running.log


async def test_a_daemon_killed_and_restarted_polls_every_event_again_at_once(
    tmp_path: Path,
) -> None:
    """A kill -9 leaves the batches in flight claimed; the restarted daemon knows them as its
    own and polls them again at once, not when their leases (50 s here) end."""
    simulator = Simulator(api_key=API_KEY, latency=1.0)  # a request is always in flight
    async with serve(simulator) as upstream:
        config = daemon_config(
            tmp_path / "monitor.yaml",
            upstream,
            [{"id": f"E{i}"} for i in range(4)],
            ticketmaster={"base_url": upstream, "api_key": API_KEY, "batch_size": 1},
            polling={"interval": "1s"},
        )
        async with daemon(config) as first:
            await eventually(lambda: len(simulator.polled_at) == 4, what="every event polled")
            await eventually(
                lambda: simulator.requests > simulator.answered, what="a request in flight"
            )
            assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
        killed = time.time()
        async with daemon(config) as second:
            await eventually(
                lambda: min(simulator.polled_at.values()) > killed,
                within=30,
                what="every event polled after the restart",
            )
            assert await second.stop() == 0
    assert "this daemon claimed before it restarted are polled again now" in (
        second.stderr.decode()
    )
