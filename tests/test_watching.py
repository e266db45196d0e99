"""Watches managed without editing YAML: the service behind the API and the CLI, the
`watch` commands, pause and snooze, and a running daemon following them."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import yaml
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.app import Monitor
from monitor.config import Config, load_config, parse_config
from monitor.config.notifiers import WebhookNotifierConfig
from monitor.devtools.simulator import Simulator, serve
from monitor.errors import Conflict, NotFound, Refused
from monitor.in_force import with_watches
from monitor.notify.dispatcher import Dispatcher
from monitor.notify.notifiers.webhook import WebhookNotifier
from monitor.notify.roster import Route
from monitor.notify.routing import Target
from monitor.polling.watchlist import Watch
from monitor.server.writes import status_of
from monitor.store.engine import create_engine, upgrade
from monitor.store.outbox import Outbox
from monitor.store.tables import changes
from monitor.store.watches import Origin, Watches
from monitor.watching import Watching
from tests.conftest import API_KEY, FakeClock
from tests.e2e import Receiver, daemon_config, run_cli
from tests.rig import INTERVAL, RigBuilder
from tests.support import RN, A, F, N, eventually

LEGACY = "1F006248A0A61B2C"
LINK = f"https://www.ticketmaster.ie/oasis/event/{LEGACY}?x=1"
REBUILT = f"https://www.ticketmaster.ie/oasis/event/{LEGACY}"
"""The link as stored and shown: rebuilt from its parts, without what it was shared with."""
CONFIG = parse_config(
    yaml.safe_dump(
        {
            "ticketmaster": {"api_key": API_KEY},
            "notifiers": {"fans": {"type": "log"}},
            "events": [{"id": "E1", "name": "Blur"}],
        }
    ),
    "monitor.yaml",
    {},
)


@pytest.fixture
async def service(database_url: str) -> AsyncIterator[tuple[Watching, Watches, FakeClock]]:
    engine = create_engine(database_url)
    await upgrade(engine)
    clock = FakeClock()
    watches = Watches(engine)
    yield Watching(watches, lambda: CONFIG, clock), watches, clock
    await engine.dispose()


async def test_watches_of_every_origin(service: tuple[Watching, Watches, FakeClock]) -> None:
    watching, watches, clock = service
    added = await watching.add({"url": LINK, "name": "Oasis", "notify": ["fans"]}, "token")
    assert (added.event_id, added.origin, added.name) == (LEGACY, Origin.API, "Oasis")
    await watching.add({"id": "E2", "interval": "30s"}, "cli")
    assert [(v.event_id, v.origin) for v in await watching.list()] == [
        (LEGACY, Origin.API),
        ("E1", Origin.CONFIG),
        ("E2", Origin.API),
    ]

    effective = with_watches(CONFIG, await watches.stored())
    assert [(e.id, e.region, e.interval) for e in effective.events] == [
        ("E1", None, None),
        (LEGACY, "IE", None),
        ("E2", None, 30.0),
    ]

    await watching.pause("E1", "cli")
    await watching.pause("E2", "cli")
    assert [e.id for e in with_watches(CONFIG, await watches.stored()).events] == [LEGACY]
    await watching.pause("E1", "cli", paused=False)
    assert [e.id for e in with_watches(CONFIG, await watches.stored()).events] == ["E1", LEGACY]

    changed = await watching.update(LEGACY, {"interval": "2m"}, "token")
    assert changed.settings["interval"] == "2m"
    assert changed.settings["url"] == REBUILT, "a link stays a link"

    snoozed = await watching.snooze("E1", {"for": "1h"}, "token")
    assert snoozed.snoozed_until == clock() + 3600
    await watching.remove("E2", "token")
    assert "E2" not in {v.event_id for v in await watching.list()}
    audit = [(a.who, a.action) for a in await watches.audit_of("E1")]
    assert audit == [("cli", "pause"), ("cli", "resume"), ("token", "snooze")]


@pytest.mark.parametrize(
    ("body", "status", "field", "says"),
    [
        ({"id": "E1"}, 409, "id", "E1 is watched already"),
        ({"id": "x y"}, 400, "id", "is not an event ID"),
        ({"url": "https://www.ticketmaster.com/artist/1"}, 400, None, "does not point at an event"),
        ({"id": "E3", "interval": "30"}, 400, "interval", "use a number with s, m, h or d"),
        ({"id": "E3", "notify": ["nobody"]}, 400, "notify", "no notifier is named 'nobody'"),
        ({"id": "E3", "colour": "red"}, 400, "colour", "unknown field 'colour'"),
        ({"name": "no id"}, 400, None, "give the event as `id:` or as `url:`"),
    ],
)
async def test_bad_input_names_the_field_and_changes_nothing(
    service: tuple[Watching, Watches, FakeClock],
    body: dict[str, object],
    status: int,
    field: str | None,
    says: str,
) -> None:
    watching, watches, _ = service
    with pytest.raises(Refused) as refused:
        await watching.add(body, "token")
    assert (status_of(refused.value), refused.value.field) == (status, field)
    assert says in str(refused.value)
    assert await watches.stored() == []


async def test_config_watches_stay_declarative(
    service: tuple[Watching, Watches, FakeClock],
) -> None:
    watching, _, _ = service
    with pytest.raises(Conflict, match="remove it from the config file"):
        await watching.remove("E1", "token")
    with pytest.raises(Refused, match="change it there"):
        await watching.update("E1", {"interval": "1m"}, "token")
    with pytest.raises(NotFound):
        await watching.pause("NOPE", "token")


async def test_a_snoozed_watch_is_polled_and_tells_its_latest_state_once_it_ends(
    rig: RigBuilder, hook: Receiver
) -> None:
    r = await rig(watches={"E1": Watch("E1", "Blur", INTERVAL, (Target("ops"),))})
    config = WebhookNotifierConfig.model_validate({"type": "webhook", "url": hook.url})
    notifier = WebhookNotifier("ops", config)
    dispatcher = Dispatcher(
        Outbox(r.engine),
        {"ops": Route(notifier, config.retry, concurrency=2, timeout=10.0)},
        r.clock,
        rng=random.Random(7),
    )

    async def deliver() -> None:
        await dispatcher.pump()
        await dispatcher.drain()

    try:
        r.simulator.set("E1", N, RN)
        await r.cycle()
        await Watches(r.engine).change(
            "E1", r.clock(), "cli", "snooze", None, snoozed_until=r.clock() + 3600
        )
        for status in (A, F, A):
            r.simulator.set("E1", status, RN)
            await r.cycle()
            await deliver()
        assert await r.count(changes) == 3, "polled and stored while snoozed"
        assert hook.bodies() == [], "nobody told"
        r.clock.advance(3600)
        await deliver()
        (told,) = hook.bodies()
        assert told["data"]["current"]["status"] == A, "only the latest state, once"
    finally:
        await notifier.aclose()


async def test_the_watch_commands_work_on_the_database(tmp_path: Path) -> None:
    path = daemon_config(tmp_path / "monitor.yaml", "http://127.0.0.1:9", [{"id": "E1"}])
    code, out, err = await run_cli("watch", "add", LINK, "--name", "Oasis", "-c", str(path))
    assert (code, out.strip()) == (0, f"watching {LEGACY} (Oasis)"), err
    code, out, err = await run_cli("watch", "pause", "E1", "-c", str(path))
    assert (code, out.strip()) == (0, "E1 is paused"), err
    code, out, err = await run_cli("watch", "snooze", LEGACY, "--for", "2h", "-c", str(path))
    assert code == 0, err
    code, out, _ = await run_cli("watch", "list", "--json", "-c", str(path))
    listed = {w["id"]: w for w in orjson.loads(out)}
    assert (listed["E1"]["origin"], listed["E1"]["paused"]) == ("config", True)
    assert (listed[LEGACY]["origin"], listed[LEGACY]["settings"]["url"]) == ("api", REBUILT)
    assert listed[LEGACY]["snoozed_until"] is not None


async def test_watches_export_as_yaml_and_refusals_say_why(tmp_path: Path) -> None:
    path = daemon_config(tmp_path / "monitor.yaml", "http://127.0.0.1:9", [{"id": "E1"}])
    engine = create_engine(load_config(path).database.url)
    try:
        await upgrade(engine)
        watching = Watching(Watches(engine), lambda: load_config(path), FakeClock())
        await watching.add({"url": LINK, "name": "Oasis"}, "cli")
        await watching.add({"id": "E2", "interval": "30s"}, "cli")
    finally:
        await engine.dispose()
    code, out, _ = await run_cli("watch", "export", "-c", str(path))
    assert yaml.safe_load(out)["events"] == [
        {"url": REBUILT, "name": "Oasis"},
        {"id": "E1"},
        {"id": "E2", "interval": "30s"},
    ]
    code, _, err = await run_cli("watch", "rm", "E1", "-c", str(path))
    assert code == 1
    assert "remove it from the config file" in err
    code, _, err = await run_cli("watch", "add", "E3", "--interval", "30", "-c", str(path))
    assert code == 2
    assert "watch add: interval: invalid duration" in err


async def test_a_running_daemon_follows_watches_added_beside_it(tmp_path: Path) -> None:
    simulator = Simulator(api_key=API_KEY)
    for event_id in ("E1", "E2"):
        simulator.set(event_id, A, RN)
    path = tmp_path / "monitor.yaml"
    async with serve(simulator) as upstream:
        daemon_config(path, upstream, [{"id": "E1"}])
        config: Config = load_config(path)
        async with Monitor(config, follow_every=0.2) as monitor:
            await eventually(lambda: "E1" in simulator.asked, what="the first polls")
            beside = Watching(monitor.parts.stores.watches, lambda: config, monitor.clock)
            await beside.add({"id": "E2", "interval": "1s"}, "cli")
            await eventually(lambda: "E2" in simulator.asked, what="the added watch polled")
            await beside.pause("E1", "cli")

            async def e1_unwatched() -> bool:
                row = await monitor.parts.stores.reads.event_row("E1")
                return row is not None and not row.watched

            await eventually(e1_unwatched, what="the paused watch left the watchlist")


async def test_watches_outside_the_file_count_as_watching(tmp_path: Path) -> None:
    """With only API watches, the watchdog and readiness (which check for stalls only
    while something is watched) see every watch in force, not the file's list alone."""
    simulator = Simulator(api_key=API_KEY)
    path = tmp_path / "monitor.yaml"
    async with serve(simulator) as upstream:
        daemon_config(path, upstream, [])
        config = load_config(path)
        async with Monitor(config, follow_every=0.2) as monitor:
            assert not monitor.in_force.events
            await Watching(monitor.parts.stores.watches, lambda: config, monitor.clock).add(
                {"id": "E9"}, "cli"
            )
            await eventually(lambda: "E9" in simulator.asked, what="the added watch polled")
            assert [event.id for event in monitor.in_force.events] == ["E9"]
            assert monitor.context is not None
            assert [event.id for event in monitor.context.config.events] == ["E9"]


async def test_concurrent_writes_to_one_watch_the_last_one_wins(
    service: tuple[Watching, Watches, FakeClock],
) -> None:
    """Two replicas changing one watch at once: one name stands, both writes are audited,
    and the watch is still one row."""
    watching, watches, clock = service
    await watching.add({"id": "E2", "interval": "30s"}, "cli")
    other = Watching(Watches(watches.engine), lambda: CONFIG, clock)
    await asyncio.gather(
        watching.update("E2", {"name": "Night 1"}, "api"),
        other.update("E2", {"name": "Night 2"}, "api"),
    )
    final = await watching.get("E2")
    assert final.name in ("Night 1", "Night 2")
    assert final.settings["interval"] == "30s"
    assert [entry.action for entry in await watching.audit("E2")] == ["add", "change", "change"]
    assert [watch.event_id for watch in await watches.stored()] == ["E2"]


async def test_a_snooze_and_what_it_lets_go_are_one_write(engine: AsyncEngine) -> None:
    """Ending a snooze and making its held deliveries due happen in one transaction: a
    crash between the two would leave the alarm held until the old end."""
    watches = Watches(engine)
    began: list[object] = []

    def count(*args: object) -> None:
        began.append(args)

    await watches.snooze("E1", 4_000_000_000.0, 1_000.0, "cli")
    event.listen(engine.sync_engine, "begin", count)
    try:
        await watches.snooze("E1", None, 2_000.0, "cli")
    finally:
        event.remove(engine.sync_engine, "begin", count)
    assert len(began) == 1
    stored = await watches.get_many(["E1"])
    assert stored["E1"].snoozed_until is None
    assert [a.action for a in await watches.audit_of("E1")] == ["snooze", "snooze"]
