"""The rate-limit benchmark: real daemons against a simulator enforcing 5 requests/s.

5,000 events in batches of 100, due every 5 s, ask for 10 requests a second: twice what
the simulator allows. With `--replicas 1` one daemon runs on SQLite; with more, they share
a fresh PostgreSQL database and its request limiter. Prints one JSON line: spike-arrest 429s
over the run, and the share of the allowed rate the daemons used (after a short warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from bench.cluster import postgres_database, sim, simulator, start_daemon, stop, write_config
from bench.polling import API_KEY

RATE = 5.0
WARM_UP = 10.0


@contextlib.asynccontextmanager
async def database(replicas: int, workdir: Path) -> AsyncIterator[str]:
    if replicas == 1:
        yield f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    else:
        async with postgres_database() as url:
            yield url


async def bench(events: int, minutes: float, replicas: int) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    async with database(replicas, workdir) as url:
        return await _run(url, workdir, events, minutes, replicas)


async def _run(
    url: str, workdir: Path, events: int, minutes: float, replicas: int
) -> dict[str, float]:
    with simulator("--rate", f"{RATE:g}") as base:
        document = {
            "ticketmaster": {
                "base_url": base,
                "api_key": API_KEY,
                "batch_size": 100,
                "requests_per_second": RATE,
                "daily_quota": 10_000_000,
            },
            "database": {"url": url},
            "server": {"enabled": False},
            "polling": {"interval": "5s"},
            "logging": {"level": "WARNING"},
            "events": [{"id": f"R{i:06d}"} for i in range(events)],
        }
        daemons = [
            start_daemon(write_config(workdir / f"replica{index}.json", document))
            for index in range(replicas)
        ]
        try:
            async with aiohttp.ClientSession() as session:
                await asyncio.sleep(WARM_UP)
                before, started = await sim(session, base, "stats"), time.monotonic()
                await asyncio.sleep(minutes * 60)
                after, elapsed = await sim(session, base, "stats"), time.monotonic() - started
        finally:
            for daemon in daemons:
                stop(daemon)
    answered = after["answered"] - before["answered"]
    return {
        "replicas": replicas,
        "minutes": elapsed / 60,
        "requests": after["requests"],
        "spike_arrests": after["spike_arrests"],
        "rate_used": answered / elapsed / RATE,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--replicas", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args.events, args.minutes, args.replicas))))


if __name__ == "__main__":
    main()
