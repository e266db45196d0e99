"""The mass on-sale benchmark: N events change in one cycle and are delivered by webhook.

The simulator and the receiver run in their own processes; the poller and the dispatcher
run here, wired as the daemon wires them. Prints one JSON line: how long until every change
was delivered, and the time from the poll answer to the webhook's arrival (p50, p99).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from sqlalchemy import select, update

from bench.polling import API_KEY, free_port, start_simulator, unpaced_poller
from monitor.config import load_config
from monitor.notify.dispatcher import Dispatcher
from monitor.notify.notifiers import build_notifier
from monitor.notify.roster import Route
from monitor.polling.watchlist import watchlist
from monitor.store.engine import create_engine, upgrade
from monitor.store.outbox import Outbox
from monitor.store.repository import Repository
from monitor.store.tables import batches, changes, deliveries
from monitor.wiring import sync_watchlist

_SINGLES = 100


async def wait_for_port(port: int) -> None:
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
        else:
            writer.close()
            return
    raise RuntimeError(f"nothing listens on {port}")


async def bench(events: int) -> dict[str, float]:
    sim_port, hook_port = free_port(), free_port()
    simulator = start_simulator(sim_port)
    receiver = subprocess.Popen([sys.executable, "-m", "bench.receiver", str(hook_port)])
    workdir = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    config_file = workdir / "bench.yaml"
    config_file.write_text(
        json.dumps(
            {
                "ticketmaster": {"base_url": f"http://127.0.0.1:{sim_port}", "api_key": API_KEY},
                "database": {"url": f"sqlite+aiosqlite:///{workdir / 'bench.db'}"},
                "notifiers": {
                    "ops": {"type": "webhook", "url": f"http://127.0.0.1:{hook_port}/hook"}
                },
                "events": [{"id": f"S{i:06d}"} for i in range(events)],
            }
        )
    )
    config = load_config(config_file)
    engine = create_engine(config.database.url)
    try:
        await wait_for_port(hook_port)
        await upgrade(engine)
        repository = Repository(engine)
        watches = watchlist(config)
        await sync_watchlist(repository, config, watches, 0.0)
        notifier = build_notifier("ops", config.notifiers["ops"])
        route = Route.of(notifier, config.notifiers["ops"])
        dispatcher = Dispatcher(Outbox(engine), {"ops": route}, time.time)
        async with aiohttp.ClientSession() as session, aiohttp.ClientSession() as control:
            poller = unpaced_poller(
                config, session, repository, watches, time.time, on_changes=dispatcher.wake
            )

            async def cycle() -> None:
                async with engine.begin() as connection:
                    await connection.execute(update(batches).values(next_due_at=0))
                await poller.run_cycle()

            async def set_all(status: str) -> None:
                async with control.post(
                    f"http://127.0.0.1:{sim_port}/_sim/all", json={"status": status}
                ) as response:
                    response.raise_for_status()

            await cycle()  # the baseline
            await set_all("TICKETS_NOT_AVAILABLE")
            await cycle()  # sold out everywhere; these changes are not part of the measure
            async with engine.begin() as connection:
                await connection.execute(update(deliveries).values(state="delivered"))
            await set_all("TICKETS_AVAILABLE")  # a mass on-sale
            dispatching = asyncio.create_task(dispatcher.run())
            started = time.time()
            await cycle()

            async def arrivals() -> dict[str, float]:
                async with control.get(f"http://127.0.0.1:{hook_port}/stats") as response:
                    return dict(await response.json())

            while len(wave := await arrivals()) < events and time.time() - started < 60:
                await asyncio.sleep(0.2)
            wave_seconds = max(wave.values()) - started
            # Then single changes on a healthy receiver: the latency one fan waits.
            for index in range(_SINGLES):
                status = "FEW_TICKETS_LEFT" if index % 2 == 0 else "TICKETS_AVAILABLE"
                async with control.put(
                    f"http://127.0.0.1:{sim_port}/_sim/events/S000000", json={"status": status}
                ) as response:
                    response.raise_for_status()
                await cycle()
                while len(await arrivals()) < events + index + 1:
                    await asyncio.sleep(0.01)
            final = await arrivals()
            dispatching.cancel()
            await dispatcher.aclose()
            await notifier.aclose()
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(deliveries.c.id, changes.c.observed_at).join(
                        changes, changes.c.id == deliveries.c.change_id
                    )
                )
            ).all()
        singles = sorted(
            final[i] - observed for i, observed in rows if i in final and i not in wave
        )
    finally:
        await engine.dispose()
        for process in (simulator, receiver):
            process.terminate()
            process.wait()
        shutil.rmtree(workdir)
    return {
        "wave_delivered": len(wave),
        "wave_s": wave_seconds,
        "latency_p50_ms": singles[len(singles) // 2] * 1000,
        "latency_p99_ms": singles[int(len(singles) * 0.99)] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args.events))))


if __name__ == "__main__":
    main()
