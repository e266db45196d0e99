"""The API benchmark: /api/events latency with 100,000 watched events.

The server runs in its own process on a SQLite database filled like a daemon's; this
process asks for pages (first, by cursor, filtered by status) one after another and prints
one JSON line with the p50 and p99 latency in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from sqlalchemy import bindparam, update

from bench.polling import free_port
from monitor.config import parse_config
from monitor.metrics import Metrics
from monitor.models import new_id
from monitor.polling.watchlist import Watch
from monitor.server.context import Context
from monitor.server.web import serve
from monitor.store.engine import create_engine, upgrade
from monitor.store.reads import Reads
from monitor.store.repository import Repository
from monitor.store.tables import events
from monitor.upstream.health import Upstream

STATUSES = ("TICKETS_AVAILABLE", "FEW_TICKETS_LEFT", "TICKETS_NOT_AVAILABLE")


async def fill(database: Path, count: int) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    await upgrade(engine)
    entries = [Watch(f"A{i:07d}", f"Show {i}", 60.0) for i in range(count)]
    await Repository(engine).sync_watchlist(entries, 100, time.time(), new_id)
    rng = random.Random(1)
    async with engine.begin() as connection:
        await connection.execute(
            update(events)
            .where(events.c.event_id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                resale_status="TICKETS_NOT_AVAILABLE",
                last_seen_at=time.time(),
                last_changed_at=time.time() - rng.random() * 86400,
            ),
            [{"b_id": e.event_id, "b_status": rng.choice(STATUSES)} for e in entries],
        )
    await engine.dispose()


async def run_server(database: Path, port: int) -> None:
    config = parse_config(
        json.dumps(
            {
                "ticketmaster": {"api_key": "bench-key"},
                "database": {"url": f"sqlite+aiosqlite:///{database}"},
                "server": {"port": port},
            }
        ),
        "bench",
        {},
    )
    engine = create_engine(config.database.url)
    context = Context(
        lambda: config,
        Reads(engine),
        Upstream(clock=time.time),
        Metrics(),
        time.time,
        started_at=time.time(),
    )
    async with serve(context):
        print("ready", flush=True)
        await asyncio.Event().wait()


async def measure(port: int, requests: int) -> dict[str, float]:
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(2)
    latencies: list[float] = []
    async with aiohttp.ClientSession(base) as http:
        cursor: str | None = None
        for number in range(requests):
            kind = number % 3
            if kind == 0:
                path = "/api/events"
            elif kind == 1:
                path = f"/api/events?after={cursor or ''}"
            else:
                path = f"/api/events?status={rng.choice(STATUSES)}&limit=100"
            started = time.perf_counter()
            async with http.get(path) as response:
                page = await response.json()
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status == 200, page
            cursor = page["next"]
    latencies.sort()
    return {
        "requests": requests,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--serve", nargs=2, metavar=("DATABASE", "PORT"))
    args = parser.parse_args()
    if args.serve:
        asyncio.run(run_server(Path(args.serve[0]), int(args.serve[1])))
        return
    database = Path(tempfile.mkdtemp(prefix="monitor-bench-")) / "api.db"
    asyncio.run(fill(database, args.events))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.api", "--serve", str(database), str(port)],
        stdout=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()
        figures = asyncio.run(measure(port, args.requests))
    finally:
        server.terminate()
        server.wait(5)
    print(json.dumps({"events": args.events, **figures}))


if __name__ == "__main__":
    main()
