"""The failover benchmark: how long events go unpolled after a kill -9.

Two scenarios against a simulator whose answers take 0.5 s (so polls are in flight):
- `single`: the only daemon (SQLite) is killed and restarted at once;
- `replicas`: one of three replicas sharing PostgreSQL is killed for good.

The figure is the longest time between two polls of one event, less its interval: how
much later than planned the worst-served event was polled. The target is 10 s at most.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.cluster import (
    postgres_database,
    sim,
    simulator,
    start_daemon,
    stop,
    write_config,
)
from bench.polling import API_KEY

INTERVAL = 10.0
EVENTS = 300


def document(base: str, database: str) -> dict[str, object]:
    return {
        "ticketmaster": {"base_url": base, "api_key": API_KEY, "batch_size": 10},
        "database": {"url": database},
        "server": {"enabled": False},
        "polling": {"interval": f"{INTERVAL:g}s"},
        "logging": {"level": "WARNING"},
        "events": [{"id": f"F{i:05d}"} for i in range(EVENTS)],
    }


async def measure(base: str, kill: asyncio.Future[None], settle: float) -> float:
    """Wait for every event to be polled twice, reset the gap, let `kill` happen, and return
    the longest gap seen over the next `settle` seconds less the interval."""
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 60
        while (await sim(session, base, "gaps"))["polled"] < EVENTS:
            assert time.monotonic() < deadline, "not every event was polled"
            await asyncio.sleep(0.5)
        await asyncio.sleep(INTERVAL * 1.5)
        await sim(session, base, "gaps", post=True)
        kill.set_result(None)
        await asyncio.sleep(settle)
        gaps = await sim(session, base, "gaps")
    return max(0.0, float(max(gaps["longest"], gaps["stalest"])) - INTERVAL)


async def kill_the_first(
    base: str, daemons: list[subprocess.Popen[bytes]], restart: Path | None = None
) -> float:
    """kill -9 the first daemon once polls run steadily (starting it again from `restart`,
    if given), and measure how late the worst-served event was polled."""
    kill: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    measuring = asyncio.create_task(measure(base, kill, INTERVAL + 15))
    try:
        await kill
        daemons[0].kill()
        daemons[0].wait()
        if restart is not None:
            daemons.append(start_daemon(restart))
        return await measuring
    finally:
        for daemon in daemons:
            with contextlib.suppress(Exception):
                stop(daemon)


async def single(workdir: Path) -> float:
    with simulator("--latency", "0.5") as base:
        config = write_config(
            workdir / "single.json",
            document(base, f"sqlite+aiosqlite:///{workdir / 'single.db'}"),
        )
        return await kill_the_first(base, [start_daemon(config)], restart=config)


async def replicas(workdir: Path) -> float:
    async with postgres_database() as database:
        with simulator("--latency", "0.5") as base:
            daemons = [
                start_daemon(write_config(workdir / f"replica{i}.json", document(base, database)))
                for i in range(3)
            ]
            return await kill_the_first(base, daemons)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("single", "replicas"), required=True)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="monitor-failover-"))
    run = single if args.mode == "single" else replicas
    late = asyncio.run(run(workdir))
    print(json.dumps({"mode": args.mode, "interval": INTERVAL, "late_s": late}))


if __name__ == "__main__":
    main()
