"""The MQTT benchmark: 10,000 changes published at QoS 1 through the outbox and dispatcher
to the local Mosquitto, counted by a subscriber. Prints one JSON line: how long until the
subscriber had every change message."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path

import aiomqtt

from monitor.config import parse_config
from monitor.models import Availability, Change, ResaleStatus, Status
from monitor.notify.dispatcher import Dispatcher
from monitor.notify.notifiers import build_notifier
from monitor.notify.roster import Route
from monitor.store.engine import create_engine, upgrade
from monitor.store.outbox import Outbox
from monitor.store.records import NewDelivery, PollWrite
from monitor.store.repository import Repository

BROKER = ("127.0.0.1", 1883)


async def bench(count: int) -> dict[str, float]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    config = parse_config(
        json.dumps(
            {
                "ticketmaster": {"api_key": "bench-key"},
                "database": {"url": f"sqlite+aiosqlite:///{workdir / 'bench.db'}"},
                "notifiers": {
                    "home": {
                        "type": "mqtt",
                        "url": f"mqtt://{BROKER[0]}:{BROKER[1]}",
                        "topic_prefix": prefix,
                        "qos": 1,
                    }
                },
            }
        ),
        "bench.json",
        {},
    )
    engine = create_engine(config.database.url)
    await upgrade(engine)
    before = Availability(Status.TICKETS_NOT_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE)
    after = Availability(Status.TICKETS_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE)
    now = time.time()
    write = PollWrite()
    for index in range(count):
        change = Change(f"c{index}", f"M{index:06d}", None, before, after, now)
        write.changes.append(change)
        write.deliveries.append(NewDelivery(f"d{index}", change.id, "home", now, 0.0))
    await Repository(engine).save_poll(write)
    settings = config.notifiers["home"]
    notifier = build_notifier("home", settings)
    dispatcher = Dispatcher(Outbox(engine), {"home": Route.of(notifier, settings)}, time.time)
    received = 0
    async with aiomqtt.Client(*BROKER) as subscriber:
        await subscriber.subscribe(f"{prefix}/events/+/changes", qos=1)
        started = time.monotonic()
        dispatching = asyncio.create_task(dispatcher.run())
        async with asyncio.timeout(120):
            async for _ in subscriber.messages:
                received += 1
                if received == count:
                    break
        seconds = time.monotonic() - started
    dispatching.cancel()
    await dispatcher.aclose()
    await notifier.aclose()
    await engine.dispose()
    return {"messages": received, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args.changes))))


if __name__ == "__main__":
    main()
