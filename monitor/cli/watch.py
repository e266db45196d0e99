"""`watch`: list, add, change, pause, snooze and remove watches without editing YAML. The
commands work on the database directly, so they work next to a running daemon (inside its
container too), which follows within a tick."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import yaml

from monitor.cli import follow
from monitor.cli.common import (
    EXIT_OK,
    WHO,
    Commands,
    command,
    database,
    load,
    refused,
    table,
    when,
)
from monitor.config import Config
from monitor.errors import Refused
from monitor.inputs import entry_of
from monitor.store.watches import Watches
from monitor.watching import Watching


def register(commands: Commands) -> None:
    watch = commands.add_parser("watch", help="manage watches without editing YAML")
    actions = watch.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = command(
        actions,
        "add",
        _add,
        "watch an event, by its ID or its link",
        examples=("watch add https://www.ticketmaster.co.uk/oasis/event/1F006248A0A61B2C",),
    )
    add.add_argument("event", metavar="ID|URL")
    add.add_argument("--name")
    add.add_argument("--interval", help="how often it is polled: 30s, 2m, …")
    add.add_argument(
        "--region", help="where it is sold when an ID alone cannot say: GB, IE, … (a link says)"
    )
    add.add_argument("--notify", help="notifiers, comma-separated")
    add.add_argument("--tag", action="append", default=[], help="a tag (repeat for more)")
    for name, handler, what in (
        ("rm", _remove, "stop watching an event added here (its history stays)"),
        ("pause", _pause, "stop polling an event for now (state and history stay)"),
        ("resume", _resume, "poll a paused event again"),
    ):
        sub = command(actions, name, handler, what, examples=(f"watch {name} vvG1zZ9pCY3Sp3",))
        sub.add_argument("event", metavar="ID")
    snooze = command(
        actions,
        "snooze",
        _snooze,
        "keep polling an event but tell nobody until then (then its latest state, once)",
        examples=("watch snooze vvG1zZ9pCY3Sp3 --for 8h",),
    )
    snooze.add_argument("event", metavar="ID")
    until = snooze.add_mutually_exclusive_group(required=True)
    until.add_argument("--for", dest="duration", help="for how long: 2h, 1d, …")
    until.add_argument("--until", help="until when: an ISO 8601 date-time (UTC without an offset)")
    listing = command(
        actions,
        "list",
        _list,
        "list every watch: its origin, pause and snooze",
        examples=("watch list", "watch list --json"),
    )
    listing.add_argument("--json", action="store_true")
    follow.register(actions)
    command(
        actions,
        "export",
        _export,
        "print every watch as YAML for `events:`",
        examples=("watch export > watches.yaml",),
    )


def _run(args: argparse.Namespace, act: Callable[[Watching, Config], Awaitable[int]]) -> int:
    config = load(args.config)

    async def body() -> int:
        async with database(config) as engine:
            service = Watching(Watches(engine), lambda: config, time.time)
            try:
                return await act(service, config)
            except Refused as exc:
                return refused(f"watch {args.action}", exc)

    return asyncio.run(body())


def _add(args: argparse.Namespace) -> int:
    entry: dict[str, Any] = {"url" if "://" in args.event else "id": args.event}
    if args.name:
        entry["name"] = args.name
    if args.interval:
        entry["interval"] = args.interval
    if args.region:
        entry["region"] = args.region.upper()
    if args.notify:
        entry["notify"] = [name.strip() for name in args.notify.split(",") if name.strip()]
    if args.tag:
        entry["tags"] = args.tag

    async def act(service: Watching, _config: Config) -> int:
        view = await service.add(entry, WHO)
        print(f"watching {view.event_id}" + (f" ({view.name})" if view.name else ""))
        return EXIT_OK

    return _run(args, act)


def _remove(args: argparse.Namespace) -> int:
    async def act(service: Watching, _config: Config) -> int:
        await service.remove(args.event, WHO)
        print(f"{args.event} is no longer watched; its history stays")
        return EXIT_OK

    return _run(args, act)


def _pause(args: argparse.Namespace, *, paused: bool = True) -> int:
    async def act(service: Watching, _config: Config) -> int:
        await service.pause(args.event, WHO, paused=paused)
        print(f"{args.event} is {'paused' if paused else 'polled again'}")
        return EXIT_OK

    return _run(args, act)


def _rfc3339(text: str) -> str:
    """What a person types (`2026-12-24 18:00`, UTC without an offset) as the API takes it;
    text that is no date-time goes on as it is, to be refused with the API's words."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _resume(args: argparse.Namespace) -> int:
    return _pause(args, paused=False)


def _snooze(args: argparse.Namespace) -> int:
    asked = {"for": args.duration} if args.duration is not None else {"until": _rfc3339(args.until)}

    async def act(service: Watching, _config: Config) -> int:
        view = await service.snooze(args.event, asked, WHO)
        if view.snoozed_until is None:
            print(f"{args.event} is not snoozed: its changes are told as they come")
        else:
            print(f"{args.event} is snoozed until {when(view.snoozed_until)}")
        return EXIT_OK

    return _run(args, act)


def _list(args: argparse.Namespace) -> int:
    async def act(service: Watching, _config: Config) -> int:
        views = await service.list()
        if args.json:
            print(
                orjson.dumps(
                    [view.document() for view in views], option=orjson.OPT_INDENT_2
                ).decode()
            )
            return EXIT_OK
        if not views:
            print("nothing is watched")
            return EXIT_OK
        table(
            ("EVENT", "NAME", "ORIGIN", "PAUSED", "SNOOZED UNTIL"),
            [
                (
                    view.event_id,
                    view.name or "-",
                    view.origin.value + (f" ({view.search})" if view.search else ""),
                    "yes" if view.paused else "-",
                    when(view.snoozed_until),
                )
                for view in views
            ],
        )
        return EXIT_OK

    return _run(args, act)


def _export(args: argparse.Namespace) -> int:
    async def act(service: Watching, config: Config) -> int:
        configured = {event.id: event for event in config.events}
        entries = [
            entry_of(configured[view.event_id])
            if view.event_id in configured
            else dict(view.settings)
            for view in await service.list()
        ]
        print(yaml.safe_dump({"events": entries}, allow_unicode=True, sort_keys=False), end="")
        return EXIT_OK

    return _run(args, act)
