"""The rate-limit benchmark: the real daemon against a simulator enforcing 5 requests/s.

5,000 events in batches of 100, due every 5 s, ask for 10 requests a second: twice what
the simulator allows. Prints one JSON line: spike-arrest 429s over the run, and the share
of the allowed rate the daemon used (measured after a short warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.polling import API_KEY, free_port

RATE = 5.0
WARM_UP = 10.0


async def stats(session: aiohttp.ClientSession, base: str) -> dict[str, int]:
    async with session.get(f"{base}/_sim/stats") as response:
        return dict(await response.json())


async def bench(events: int, minutes: float) -> dict[str, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    simulator = subprocess.Popen(
        [
            *(sys.executable, "-m", "monitor", "simulate"),
            *("--port", str(port), "--api-key", API_KEY, "--rate", f"{RATE:g}"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert simulator.stdout is not None
    simulator.stdout.readline()
    workdir = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    config = workdir / "ratelimit.yaml"
    config.write_text(
        json.dumps(
            {
                "ticketmaster": {
                    "base_url": base,
                    "api_key": API_KEY,
                    "batch_size": 100,
                    "requests_per_second": RATE,
                    "daily_quota": 10_000_000,
                },
                "database": {"url": f"sqlite+aiosqlite:///{workdir / 'bench.db'}"},
                "polling": {"interval": "5s"},
                "logging": {"level": "WARNING"},
                "events": [{"id": f"R{i:06d}"} for i in range(events)],
            }
        )
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        async with aiohttp.ClientSession() as session:
            await asyncio.sleep(WARM_UP)
            before, started = await stats(session, base), time.monotonic()
            await asyncio.sleep(minutes * 60)
            after, elapsed = await stats(session, base), time.monotonic() - started
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(15)
        simulator.terminate()
        simulator.wait(5)
    answered = after["answered"] - before["answered"]
    return {
        "minutes": elapsed / 60,
        "requests": after["requests"],
        "spike_arrests": after["spike_arrests"],
        "rate_used": answered / elapsed / RATE,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args.events, args.minutes))))


if __name__ == "__main__":
    main()
