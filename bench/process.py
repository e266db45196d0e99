"""What the daemon costs a user: the whole process's CPU per 1,000 observations in steady
state, against the floor at the same request size.

The daemon runs as a user runs it (`inventory-monitor run`, SQLite, a log notifier,
Discovery off) against a stand-in API of N unchanging events with no limits, each in its
own process. After two full cycles (the first start and any learning behind it), the
process's CPU (user and system, everything it runs: polling, storage, scheduling, the
server, housekeeping) and the stand-in's count of observations are read every `--window`
seconds; the figure is the median of those windows, never the best one. The floor is a
bare aiohttp loop fetching and parsing the same events in requests of the same size; it
runs before and after the daemon on the same machine, since absolute times on a shared
machine wander by half from one process to the next.

Prints one JSON line: daemon and floor ms per 1,000 observations, their ratio, the
daemon's peak RSS, and the IDs its requests carried.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
from aiohttp import web

API_KEY = "bench-key"
AUTO_FLOOR_SIZE = 1000
"""The size the daemon learns against the stand-in, which takes the API's 1,000 IDs."""


async def stand_in(count: int) -> None:
    """The stand-in API: prints its port, then answers until killed."""
    known = {f"E{i:06d}" for i in range(count)}
    stats = {"requests": 0, "observations": 0, "largest": 0, "distinct": 0}
    last_seen: dict[str, float] = {}
    gaps = {"since": time.monotonic(), "longest": 0.0}

    async def availability(request: web.Request) -> web.Response:
        ids = [i for i in request.query.get("events", "").split(",") if i]
        stats["requests"] += 1
        stats["observations"] += len(ids)
        stats["largest"] = max(stats["largest"], len(ids))
        now = time.monotonic()
        for event_id in ids:
            previous = last_seen.get(event_id)
            if previous is not None and previous >= gaps["since"]:
                gaps["longest"] = max(gaps["longest"], now - previous)
            last_seen[event_id] = now
        stats["distinct"] = len(last_seen)
        body = [
            {
                "eventId": i,
                "status": "TICKETS_AVAILABLE" if i in known else "UNKNOWN",
                "resaleStatus": "TICKETS_NOT_AVAILABLE",
            }
            for i in ids
        ]
        return web.Response(body=json.dumps(body).encode(), content_type="application/json")

    async def stats_view(_: web.Request) -> web.Response:
        return web.json_response(stats)

    async def gaps_view(request: web.Request) -> web.Response:
        """The longest time between two polls of one event since the last reset."""
        if request.query.get("reset"):
            gaps.update(since=time.monotonic(), longest=0.0)
        return web.json_response(gaps)

    app = web.Application()
    app.router.add_route("*", "/inventory-status/v1/availability", availability)
    app.router.add_get("/_stats", stats_view)
    app.router.add_get("/_gaps", gaps_view)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


class StandIn:
    def __init__(self, count: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.process", "--stand-in", str(count)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stats") as answer:
            return dict(json.load(answer))

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


async def floor(port: int, count: int, size: int, cycles: int = 5) -> float:
    """ms CPU per 1,000 observations of a bare fetch-and-parse loop."""
    ids = [f"E{i:06d}" for i in range(count)]
    state: dict[str, tuple[str, str]] = {}
    gate = asyncio.Semaphore(4)
    url = f"http://127.0.0.1:{port}/inventory-status/v1/availability"
    async with aiohttp.ClientSession() as session:

        async def one(chunk: list[str]) -> None:
            params = {"events": ",".join(chunk), "apikey": API_KEY}
            async with gate, session.get(url, params=params) as answer:
                for item in json.loads(await answer.read()):
                    state[item["eventId"]] = (item["status"], item["resaleStatus"])

        async def cycle() -> None:
            await asyncio.gather(*(one(ids[i : i + size]) for i in range(0, count, size)))

        await cycle()
        before = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(cycles):
            await cycle()
        after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu / (count * cycles) * 1e6


def measure_floor(count: int, size: int) -> float:
    upstream = StandIn(count)
    try:
        return asyncio.run(floor(upstream.port, count, size))
    finally:
        upstream.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_daemon(config: dict[str, object], work: Path) -> subprocess.Popen[bytes]:
    """`inventory-monitor run` on `config` in `work`, logging to `work`/daemon.log."""
    (work / "monitor.json").write_text(json.dumps(config))
    with (work / "daemon.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(work / "monitor.json")],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def measure_daemon(count: int, batch: str, seconds: float, window: float) -> dict[str, float]:
    upstream = StandIn(count)
    work = Path(tempfile.mkdtemp(prefix="bench-process-"))
    config = {
        "ticketmaster": {
            "base_url": f"http://127.0.0.1:{upstream.port}",
            "api_key": API_KEY,
            "timeout": "10s",
            "batch_size": batch if batch == "auto" else int(batch),
            "requests_per_second": 100000,
            "daily_quota": 10**9,
        },
        "discovery": {"enabled": False},
        "database": {"url": f"sqlite+aiosqlite:///{work}/monitor.db"},
        "polling": {"interval": "10s"},
        "notifiers": {"console": {"type": "log"}},
        "server": {"port": 0},
        "events": [{"id": f"E{i:06d}"} for i in range(count)],
    }
    daemon = start_daemon(config, work)
    try:
        started = time.monotonic()
        while upstream.stats()["observations"] < 2 * count:
            if daemon.poll() is not None:
                raise SystemExit((work / "daemon.log").read_text()[-800:])
            if time.monotonic() - started > 300:
                raise SystemExit("no two full cycles within 300 s")
            time.sleep(0.2)
        rates = []
        seen, cpu = upstream.stats()["observations"], cpu_seconds(daemon.pid)
        for _ in range(int(seconds / window)):
            time.sleep(window)
            now_seen, now_cpu = upstream.stats()["observations"], cpu_seconds(daemon.pid)
            rates.append((now_cpu - cpu) / max(1, now_seen - seen) * 1e6)
            seen, cpu = now_seen, now_cpu
        return {
            "daemon_ms_per_1000": statistics.median(rates),
            "rss_mb": peak_rss_mb(daemon.pid),
            "ids_per_request": upstream.stats()["largest"],
        }
    finally:
        daemon.terminate()
        daemon.wait(15)
        upstream.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stand-in", type=int)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", default="auto")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--window", type=float, default=5.0)
    args = parser.parse_args()
    if args.stand_in is not None:
        asyncio.run(stand_in(args.stand_in))
        return
    size = AUTO_FLOOR_SIZE if args.batch == "auto" else int(args.batch)
    before = measure_floor(args.events, size)
    daemon = measure_daemon(args.events, args.batch, args.seconds, args.window)
    after = measure_floor(args.events, size)
    floor_ms = (before + after) / 2
    print(
        json.dumps(
            {
                **daemon,
                "floor_ms_per_1000": floor_ms,
                "ratio": daemon["daemon_ms_per_1000"] / floor_ms,
            }
        )
    )


if __name__ == "__main__":
    main()
