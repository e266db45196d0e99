"""The poller alone, in this process, against the simulator in another: a tool for finding
hot spots in a poll (run it under a profiler). What a user pays, the whole daemon process,
is `bench.process`, and that is the figure `make bench` and the docs' Performance page
(docs/development.md) give.

Prints one JSON line: CPU time of this process per 1,000 observations in unchanged cycles
(fetch, parse, detect and store) and of a bare fetch-and-parse loop over the same requests,
the wall time of one full cycle, peak RSS, and how much the database grows per million
unchanged observations. The database's schema is made beforehand in another process, as on
every start but the first (`--first-start` makes it here, which loads Alembic too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import yaml
from sqlalchemy import update

from monitor.config import Config, load_config
from monitor.polling.poller import Poller
from monitor.polling.watchlist import Watch, watchlist
from monitor.store.engine import create_engine, upgrade
from monitor.store.repository import Repository
from monitor.store.tables import batches
from monitor.upstream.health import Upstream
from monitor.upstream.inventory import AVAILABILITY_PATH, InventoryClient
from monitor.wiring import build_poller, sync_watchlist

API_KEY = "bench-key"
INTERVAL = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "simulate", "--port", str(port), "--api-key", API_KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    process.stdout.readline()  # the "listening" line
    return process


def unpaced_poller(
    config: Config,
    session: aiohttp.ClientSession,
    repository: Repository,
    watches: dict[str, Watch],
    clock: Callable[[], float],
    *,
    on_changes: Callable[[], None] = lambda: None,
) -> Poller:
    """The daemon's poller without its token bucket: the figures are about the daemon's own
    cost, not its pacing."""
    upstream = Upstream(clock=clock)
    client = InventoryClient(
        session, config.ticketmaster.base_url, API_KEY, 10.0, upstream=upstream
    )
    return build_poller(
        config,
        repository=repository,
        client=client,
        watches=watches,
        clock=clock,
        upstream=upstream,
        on_changes=on_changes,
    )


def write_watchlist(
    path: Path, sections: dict[str, object], ids: list[str], *, as_yaml: bool
) -> None:
    """The config file, written an event at a time: the benchmark's own copy of a large
    watchlist must not count in the daemon's memory."""
    with path.open("w") as out:
        if as_yaml:
            out.write(yaml.safe_dump(sections))
            out.write("events:\n")
            out.writelines(f"- id: {event_id}\n" for event_id in ids)
            return
        out.write(json.dumps(sections)[:-1] + ', "events": [')
        out.write(", ".join(f'{{"id": "{event_id}"}}' for event_id in ids))
        out.write("]}")


def fetch_and_parse_floor(
    session: aiohttp.ClientSession,
    base_url: str,
    ids: list[str],
    per_request: int,
    in_flight: int,
) -> Callable[[], Awaitable[float]]:
    """One cycle of a bare loop that only fetches and parses the same requests from the same
    simulator, the floor any poller pays: a call gives its CPU ms per 1,000 observations."""
    gate = asyncio.Semaphore(in_flight)
    url = f"{base_url}{AVAILABILITY_PATH}"
    chunks = [ids[i : i + per_request] for i in range(0, len(ids), per_request)]

    async def one(chunk: list[str]) -> int:
        async with (
            gate,
            session.get(url, params={"events": ",".join(chunk), "apikey": API_KEY}) as r,
        ):
            return len(orjson.loads(await r.read()))

    async def cycle() -> float:
        started = time.process_time()
        observed = sum(await asyncio.gather(*(one(chunk) for chunk in chunks)))
        return (time.process_time() - started) * 1000 / observed * 1000

    return cycle


def database_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def bench(
    events: int, cycles: int, as_yaml: bool, first_start: bool = False
) -> dict[str, float]:
    port = free_port()
    simulator = start_simulator(port)
    workdir = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    database = workdir / "bench.db"
    # The daemon's own path: a config file read by load_config, whose memory counts too.
    # JSON is YAML; a generated watchlist of this size is best written as JSON.
    config_file = workdir / "bench.yaml"
    write_watchlist(
        config_file,
        {
            "ticketmaster": {"base_url": f"http://127.0.0.1:{port}", "api_key": API_KEY},
            "database": {"url": f"sqlite+aiosqlite:///{database}"},
            "polling": {"interval": f"{INTERVAL:g}s"},
        },
        [f"B{i:07d}" for i in range(events)],
        as_yaml=as_yaml,
    )
    if not first_start:
        # As on every start but the first: the schema exists, so Alembic is never loaded.
        schema = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "monitor", "db", "upgrade", "--config", str(config_file)),
            stdout=subprocess.DEVNULL,
        )
        assert await schema.wait() == 0
    config = load_config(config_file)
    now = [1_800_000_000.0]
    engine = create_engine(config.database.url)
    try:
        await upgrade(engine)
        repository = Repository(engine)
        watches = watchlist(config)
        await sync_watchlist(repository, config, watches, now[0])
        # Measure whole cycles: every batch due at once instead of spread over the interval.
        async with engine.begin() as connection:
            await connection.execute(update(batches).values(next_due_at=now[0]))
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=config.ticketmaster.max_in_flight * 2)
        ) as session:
            poller = unpaced_poller(config, session, repository, watches, lambda: now[0])
            baseline = await poller.run_cycle()
            assert baseline.observations == events, baseline
            # Warm up to the steady state of a daemon that has run before: the request size
            # is learnt (and kept in the database), and the requests it makes have settled.
            settled = 0
            while settled < 2:
                size = poller.request_size
                now[0] += INTERVAL
                await poller.run_cycle()
                settled = settled + 1 if poller.request_size == size else 0
            # Closing every connection checkpoints the WAL into the database file.
            await engine.dispose()
            size_before = database_size(database)

            floor_cycle = fetch_and_parse_floor(
                session,
                config.ticketmaster.base_url,
                list(watches),
                poller.request_size,
                config.ticketmaster.max_in_flight,
            )
            # Poller and floor cycles take turns and the best of each counts: what is left
            # is the code's own cost, not what else the machine was doing meanwhile.
            cpu_ms = floor = wall = float("inf")
            observations = 0
            for _ in range(cycles):
                now[0] += INTERVAL
                started_cpu, started_wall = time.process_time(), time.perf_counter()
                stats = await poller.run_cycle()
                cycle_cpu = time.process_time() - started_cpu
                wall = min(wall, time.perf_counter() - started_wall)
                assert stats.changes == 0, stats
                assert stats.failed_requests == 0, stats
                assert stats.observations == events, stats
                cpu_ms = min(cpu_ms, cycle_cpu * 1000 / stats.observations * 1000)
                observations += stats.observations
                floor = min(floor, await floor_cycle())
            ids_per_request = poller.request_size
        await engine.dispose()
        growth = database_size(database) - size_before
    finally:
        await engine.dispose()
        simulator.terminate()
        simulator.wait()
        shutil.rmtree(workdir)
    return {
        "cpu_ms_per_1000": cpu_ms,
        "floor_ms_per_1000": floor,
        "cpu_vs_floor": cpu_ms / floor,
        "ids_per_request": ids_per_request,
        "cycle_s": wall,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "db_kb_per_million": growth / 1024 / observations * 1_000_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--yaml", action="store_true", help="a YAML watchlist, not JSON")
    parser.add_argument(
        "--first-start", action="store_true", help="create the database's schema in this process"
    )
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    print(json.dumps(asyncio.run(bench(args.events, args.cycles, args.yaml, args.first_start))))


if __name__ == "__main__":
    main()
