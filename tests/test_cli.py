"""The maintenance commands, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from monitor.store.engine import create_engine, upgrade
from monitor.store.outbox import Attempt, Outbox
from monitor.store.repository import Repository
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
    assert "test message" in json.loads(body)["data"]["event_name"]
    assert headers["webhook-signature"].startswith("v1,")


async def test_notify_test_reports_a_failure_and_names_unknown_notifiers(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, "http://127.0.0.1:9/hook"))
    code, out, _ = await run_cli("notify", "test", "ops", "--config", config)
    assert code == 1
    assert out.startswith("ops: failed: ClientConnectorError")
    code, _, err = await run_cli("notify", "test", "pager", "--config", config)
    assert (code, err.strip()) == (2, "error: no notifier is named 'pager' (known: ops)")


async def test_dead_deliveries_are_listed_and_replayed(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, "http://127.0.0.1:9/hook"))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
    try:
        await upgrade(engine)
        repository = Repository(engine)
        write = change_with_delivery(1, at=1.0, previous=None)
        await repository.save_poll(write)
        outbox = Outbox(engine)
        await outbox.record_attempts([Attempt("d1", 2.0, "dead", 410, "HTTP 410 (gone)")])

        code, out, _ = await run_cli("deliveries", "--dead", "--config", config)
        assert code == 0
        assert "d1" in out
        assert "HTTP 410 (gone)" in out
        code, out, _ = await run_cli("deliveries", "--config", config, "retry", "d1")
        assert (code, out.split()[0]) == (0, "1")
        (row,) = await outbox.list_deliveries()
        assert row.state == "pending"
        code, out, _ = await run_cli("deliveries", "--dead", "--config", config)
        assert out.strip() == "no dead deliveries"
    finally:
        await engine.dispose()
