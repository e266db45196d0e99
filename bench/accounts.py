"""A watcher shared by 1,000 fans: 20 shows each, over 2,000 distinct events.

The simulator, a webhook receiver and the daemon (`inventory-monitor run`, SQLite) run in
their own processes. The users, their channels (a webhook each) and subscriptions are
written to the database first, as the API would have written them. One event is followed
by 500 of the users.

Prints one JSON line:
- the requests a day the daemon makes in steady state (from the simulator's count over a
  window), beside those that the 2,000 distinct events need, and those that 20,000
  separately watched events (one per subscription) would need, at the same request size:
  an event many follow is polled once;
- how long, after the poll that saw it, a change of the event 500 follow takes to be in
  the outbox with a delivery for each of them (the median of several changes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
from sqlalchemy import func, insert, select

from bench.cluster import simulator, start_daemon, stop, write_config
from bench.polling import API_KEY, free_port
from monitor.store.engine import create_engine, reader, upgrade
from monitor.store.tables import changes, channels, deliveries, subscriptions, user_tokens, users

INTERVAL = 10.0
CYCLES = 6
HOT = "EV00000"


def followed(user: int, events: int, each: int, fans: int) -> list[str]:
    """The events user `user` follows: the hot one for the first `fans` users, and others
    spread evenly, so that every event has followers."""
    chosen = [HOT] if user < fans else []
    step = 1
    while len(chosen) < each:
        event = f"EV{(user * each + step) % (events - 1) + 1:05d}"
        if event not in chosen:
            chosen.append(event)
        step += 1
    return chosen


async def populate(url: str, hook: str, *, count: int, events: int, each: int, fans: int) -> None:
    engine = create_engine(url)
    await upgrade(engine)
    now = time.time()
    people: list[dict[str, object]] = []
    tokens: list[dict[str, object]] = []
    hooks: list[dict[str, object]] = []
    follows: list[dict[str, object]] = []
    for number in range(count):
        user_id = f"u{number:05d}"
        people.append(
            {
                "id": user_id,
                "name": f"fan{number:04d}",
                "role": "member",
                "settings": "{}",
                "disabled": False,
                "created_at": now,
                "changed_at": now,
            }
        )
        tokens.append({"digest": f"{number:064d}", "user_id": user_id, "created_at": now})
        hooks.append(
            {
                "user_id": user_id,
                "name": "hook",
                "kind": "webhook",
                "url": hook,
                "secret": None,
                "created_at": now,
            }
        )
        follows.extend(
            {
                "user_id": user_id,
                "event_id": event_id,
                "settings": orjson.dumps({"id": event_id}).decode(),
                "paused": False,
                "snoozed_until": None,
                "added_at": now,
            }
            for event_id in followed(number, events, each, fans)
        )
    async with engine.begin() as conn:
        for table, rows in (
            (users, people),
            (user_tokens, tokens),
            (channels, hooks),
            (subscriptions, follows),
        ):
            await conn.execute(insert(table), rows)
    await engine.dispose()


async def sim(http: aiohttp.ClientSession, base: str) -> dict[str, int]:
    async with http.get(f"{base}/_sim/stats") as answer:
        return dict(await answer.json())


async def whole_cycles(
    http: aiohttp.ClientSession, base: str, count: int
) -> tuple[int, float, float]:
    """Requests made in `count` whole poll cycles, the time they took, and the IDs a request
    carried: from the start of one cycle's burst of requests to the start of the one
    `count` cycles later, so that no part of a cycle is counted or left out."""
    starts: list[tuple[float, dict[str, int]]] = []
    before = await sim(http, base)
    while len(starts) <= count:
        await asyncio.sleep(0.02)
        now = await sim(http, base)
        at = time.monotonic()
        if now["observations"] > before["observations"] and (
            not starts or at - starts[-1][0] > INTERVAL / 2
        ):
            starts.append((at, before))
        before = now
    (first_at, first), (last_at, last) = starts[0], starts[-1]
    requests = last["requests"] - first["requests"]
    size = (last["observations"] - first["observations"]) / max(requests, 1)
    return requests, last_at - first_at, size


async def measure(
    base: str, url: str, *, events: int, follows: int, fans: int, flips: int
) -> dict[str, float]:
    engine = create_engine(url)
    async with aiohttp.ClientSession() as http:

        async def put(event_id: str, status: str) -> None:
            async with http.put(f"{base}/_sim/events/{event_id}", json={"status": status}):
                pass

        await put(HOT, "TICKETS_NOT_AVAILABLE")
        deadline = time.monotonic() + 120
        while (await sim(http, base))["distinct"] < events:
            if time.monotonic() > deadline:
                raise SystemExit("the followed events were not all polled within 2 minutes")
            await asyncio.sleep(0.5)
        await asyncio.sleep(2 * INTERVAL)  # steady state
        requests, took, size = await whole_cycles(http, base, CYCLES)

        waits = []
        status = "TICKETS_NOT_AVAILABLE"
        for _ in range(flips):
            status = (
                "TICKETS_AVAILABLE"
                if status == "TICKETS_NOT_AVAILABLE"
                else "TICKETS_NOT_AVAILABLE"
            )
            async with reader(engine).connect() as conn:
                before = await conn.scalar(select(func.count()).select_from(changes))
            await put(HOT, status)
            while True:
                async with reader(engine).connect() as conn:
                    row = (
                        await conn.execute(
                            select(changes.c.id, changes.c.observed_at)
                            .where(changes.c.event_id == HOT)
                            .order_by(changes.c.observed_at.desc())
                            .limit(1)
                        )
                    ).first()
                    count = await conn.scalar(select(func.count()).select_from(changes))
                    queued = 0
                    if row is not None and count and count > (before or 0):
                        queued = (
                            await conn.scalar(
                                select(func.count()).where(deliveries.c.change_id == row.id)
                            )
                            or 0
                        )
                if row is not None and queued >= fans:
                    waits.append(time.time() - row.observed_at)
                    break
                await asyncio.sleep(0.01)
    await engine.dispose()
    per_day = 86400.0 / INTERVAL
    return {
        "requests_per_day": requests / took * 86400,
        "ids_per_request": size,
        "plan_distinct_per_day": math.ceil(events / size) * per_day,
        "plan_separately_per_day": math.ceil(follows / size) * per_day,
        "enqueue_p50_s": statistics.median(waits),
        "enqueue_max_s": max(waits),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--each", type=int, default=20)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--fans", type=int, default=500)
    parser.add_argument("--flips", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-accounts-"))
    database = f"sqlite+aiosqlite:///{work}/monitor.db"
    hook_port = free_port()
    receiver = subprocess.Popen([sys.executable, "-m", "bench.receiver", str(hook_port)])
    try:
        with simulator() as base:
            asyncio.run(
                populate(
                    database,
                    f"http://127.0.0.1:{hook_port}/hook",
                    count=args.users,
                    events=args.events,
                    each=args.each,
                    fans=args.fans,
                )
            )
            config = write_config(
                work / "monitor.json",
                {
                    "ticketmaster": {
                        "base_url": base,
                        "api_key": API_KEY,
                        "requests_per_second": 1000,
                        "daily_quota": 10**9,
                    },
                    "discovery": {"enabled": False},
                    "database": {"url": database},
                    "polling": {"interval": f"{INTERVAL:g}s"},
                    "users": {"min_interval": f"{INTERVAL:g}s", "allow_private_targets": True},
                    "server": {"enabled": False},
                    "logging": {"level": "WARNING"},
                },
            )
            daemon = start_daemon(config)
            try:
                figures = asyncio.run(
                    measure(
                        base,
                        database,
                        events=args.events,
                        follows=args.users * args.each,
                        fans=args.fans,
                        flips=args.flips,
                    )
                )
            finally:
                stop(daemon)
    finally:
        receiver.terminate()
        receiver.wait(10)
    print(
        json.dumps(
            {
                "users": args.users,
                "subscriptions": args.users * args.each,
                "events": args.events,
                "fans": args.fans,
                **figures,
            }
        )
    )


if __name__ == "__main__":
    main()
