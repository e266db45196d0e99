"""Changing the watchlist and notifiers of a running daemon, without a restart."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.app import Monitor
from monitor.config import load_config
from monitor.devtools.simulator import Simulator, serve
from monitor.models import Health
from monitor.store.tables import batches, changes, deliveries, events
from tests.conftest import API_KEY
from tests.e2e import daemon, daemon_config
from tests.support import RN, A, eventually


async def test_a_changed_file_applies_and_an_invalid_one_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    simulator = Simulator(api_key=API_KEY)
    for event_id in ("E1", "E2", "E3"):
        simulator.set(event_id, A, RN)
    path = tmp_path / "monitor.yaml"
    async with serve(simulator) as upstream:
        daemon_config(path, upstream, [{"id": "E1"}, {"id": "E2"}])
        async with Monitor(load_config(path), config_path=path, watch_every=0.05) as monitor:
            await eventually(lambda: {"E1", "E2"} <= simulator.asked)
            daemon_config(path, upstream, [{"id": "E1", "interval": "2s"}, {"id": "E3"}])
            await eventually(lambda: "E3" in simulator.asked)

            async with monitor.parts.stores.repository.engine.connect() as connection:
                rows = dict(
                    (
                        await connection.execute(
                            select(events.c.event_id, batches.c.interval_s).join(
                                batches, isouter=True
                            )
                        )
                    ).all()
                )
                assert rows == {"E1": 2.0, "E2": None, "E3": 1.0}
                assert (await connection.execute(select(changes))).all() == []
                assert (await connection.execute(select(deliveries))).all() == []
            retired = await monitor.parts.stores.reads.event_row("E2")
            assert retired is not None
            assert not retired.watched
            assert retired.current is not None, "its history stays"

            caplog.set_level(logging.INFO)
            path.write_text(path.read_text().replace("interval: 2s", "interval: soon"))

            await eventually(lambda: "the changed configuration is refused" in caplog.text)
            assert f"{path}:" in caplog.text
            assert "events[0].interval: invalid duration 'soon'" in caplog.text
            assert [e.id for e in monitor.config.events] == ["E1", "E3"]
            polled = simulator.requests
            await eventually(lambda: simulator.requests > polled + 2)


async def test_sighup_reloads_the_daemon(tmp_path: Path) -> None:
    simulator = Simulator(api_key=API_KEY)
    path = tmp_path / "monitor.yaml"
    async with serve(simulator) as upstream:
        daemon_config(path, upstream, [{"id": "E1"}])
        async with daemon(path) as running:
            await eventually(lambda: "E1" in simulator.asked, what="the first poll")
            daemon_config(path, upstream, [{"id": "E1"}, {"id": "E2"}])
            running.process.send_signal(signal.SIGHUP)
            await eventually(lambda: "E2" in simulator.asked, within=1.5, what="the reload")
            assert "configuration reloaded from" in running.log
            assert await running.stop() == 0
        assert running.log.count("configuration reloaded from") == 1


async def test_a_replaced_api_key_is_tried_at_once(tmp_path: Path) -> None:
    simulator = Simulator(api_key="the-right-key")
    path = tmp_path / "monitor.yaml"
    async with serve(simulator) as upstream:
        daemon_config(path, upstream, [{"id": "E1"}, {"id": "E2"}], ticketmaster={
            "base_url": upstream, "api_key": "a-refused-key", "batch_size": 1
        })  # fmt: skip
        async with Monitor(load_config(path), config_path=path, watch_every=0.05) as monitor:
            await eventually(lambda: monitor.parts.upstream.status.health is Health.INVALID_API_KEY)
            refused = simulator.requests
            daemon_config(path, upstream, [{"id": "E1"}, {"id": "E2"}], ticketmaster={
                "base_url": upstream, "api_key": "the-right-key", "batch_size": 1
            })  # fmt: skip
            # At once: within a few ticks, not after the 5 minutes a refused key waits.
            await eventually(lambda: {"E1", "E2"} <= simulator.asked, within=10.0)
            assert monitor.parts.upstream.status.health is Health.OK
            assert refused == 1
