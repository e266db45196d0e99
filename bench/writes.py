"""Watches added in bulk through the JSON API while the daemon polls.

The daemon runs as a user runs it (`inventory-monitor run`, SQLite, a token for writes),
polling 1,000 events every 10 s against the stand-in API of `bench.process`, each in its own
process. Four clients in this process add 20,000 watches with `POST /api/watches`, one after
another each. Prints one JSON line: the time the adds took, the POST latency (p50, p99),
the longest time any watched event went without a poll while they were added (a skipped
poll shows as twice the interval), and whether every added watch was polled afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

from bench.process import API_KEY, StandIn, start_daemon

TOKEN = "bench-writes-token"  # noqa: S105 - the throw-away daemon's own
INTERVAL = 10.0


def listening_url(log: Path, daemon: subprocess.Popen[bytes]) -> str:
    """The server's address, from the daemon's start-up log."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if "http://127.0.0.1:" in line:
                start = line.index("http://127.0.0.1:")
                return line[start:].split()[0].rstrip("/.,")
        if daemon.poll() is not None:
            raise SystemExit(log.read_text()[-800:])
        time.sleep(0.1)
    raise SystemExit("the daemon's server did not start")


async def add_all(url: str, ids: list[str], clients: int) -> list[float]:
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(url, headers=headers) as http:

        async def add(share: list[str]) -> None:
            for event_id in share:
                started = time.perf_counter()
                async with http.post("/api/watches", json={"id": event_id}) as answer:
                    if answer.status != 201:
                        raise SystemExit(f"POST {event_id}: {answer.status} {await answer.text()}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(add(ids[i::clients]) for i in range(clients)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--watched", type=int, default=1000)
    parser.add_argument("--adds", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    upstream = StandIn(args.watched + args.adds)
    work = Path(tempfile.mkdtemp(prefix="bench-writes-"))
    config = {
        "ticketmaster": {
            "base_url": f"http://127.0.0.1:{upstream.port}",
            "api_key": API_KEY,
            "requests_per_second": 100000,
            "daily_quota": 10**9,
        },
        "discovery": {"enabled": False},
        "database": {"url": f"sqlite+aiosqlite:///{work}/monitor.db"},
        "polling": {"interval": f"{INTERVAL:g}s"},
        "notifiers": {"console": {"type": "log"}},
        "server": {"port": 0, "token": TOKEN},
        "events": [{"id": f"E{i:06d}"} for i in range(args.watched)],
    }
    daemon = start_daemon(config, work)
    try:
        url = listening_url(work / "daemon.log", daemon)
        while upstream.stats()["observations"] < 2 * args.watched:
            time.sleep(0.2)
        urllib.request.urlopen(f"http://127.0.0.1:{upstream.port}/_gaps?reset=1").close()
        ids = [f"E{i:06d}" for i in range(args.watched, args.watched + args.adds)]
        started = time.monotonic()
        latencies = asyncio.run(add_all(url, ids, args.clients))
        took = time.monotonic() - started
        with urllib.request.urlopen(f"http://127.0.0.1:{upstream.port}/_gaps") as answer:
            gap = float(json.load(answer)["longest"])
        deadline = time.monotonic() + 3 * INTERVAL
        while upstream.stats()["distinct"] < args.watched + args.adds:
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        ordered = sorted(latencies)
        print(
            json.dumps(
                {
                    "adds": args.adds,
                    "clients": args.clients,
                    "seconds": took,
                    "p50_ms": statistics.median(ordered) * 1000,
                    "p99_ms": ordered[int(len(ordered) * 0.99)] * 1000,
                    "longest_gap_s": gap,
                    "interval_s": INTERVAL,
                    "all_polled": upstream.stats()["distinct"] >= args.watched + args.adds,
                }
            )
        )
    finally:
        daemon.terminate()
        daemon.wait(15)
        upstream.close()


if __name__ == "__main__":
    main()
