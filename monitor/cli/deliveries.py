"""The outbox from the command line: `deliveries` lists them, `deliveries retry` queues dead
ones again."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from monitor.cli.common import Commands, command, database, load, table, with_examples
from monitor.config import Config
from monitor.redact import redact
from monitor.store.outbox import Outbox
from monitor.times import iso
from monitor.wording import plural


def register(commands: Commands) -> None:
    deliveries = command(
        commands,
        "deliveries",
        _deliveries,
        "list recent deliveries and their outcome",
        examples=("deliveries --dead", "deliveries retry --all-dead"),
    )
    deliveries.add_argument("--dead", action="store_true", help="only dead deliveries")
    deliveries.add_argument("--limit", type=int, default=50)
    deliveries_commands = deliveries.add_subparsers(dest="deliveries_command", metavar="COMMAND")
    retry = deliveries_commands.add_parser(
        "retry",
        help="put dead deliveries back in the queue",
        **with_examples(["deliveries retry 4f3c2a...", "deliveries retry --all-dead"]),
    )
    # SUPPRESS: a --config given before `retry` must not be reset by this parser's default.
    retry.add_argument("--config", "-c", default=argparse.SUPPRESS, type=Path)
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", default=[], metavar="ID")
    which.add_argument("--all-dead", action="store_true")
    retry.set_defaults(handler=_retry)


def _deliveries(args: argparse.Namespace) -> int:
    config = load(args.config)
    return asyncio.run(print_deliveries(config, dead_only=args.dead, limit=args.limit))


def _retry(args: argparse.Namespace) -> int:
    config = load(args.config)
    return asyncio.run(requeue(config, args.ids, all_dead=args.all_dead))


async def print_deliveries(config: Config, *, dead_only: bool, limit: int) -> int:
    async with database(config) as engine:
        rows = await Outbox(engine).list_deliveries(dead_only=dead_only, limit=limit)
    if not rows:
        print("no dead deliveries" if dead_only else "no deliveries yet")
        return 0
    table(
        ("ID", "NOTIFIER", "EVENT", "STATE", "ATTEMPTS", "CREATED", "LAST ERROR"),
        [
            (
                r.id,
                r.notifier,
                f"{r.event_name} ({r.event_id})" if r.event_name else r.event_id,
                r.state,
                str(r.attempts),
                iso(r.created_at),
                redact(r.last_error or "-"),
            )
            for r in rows
        ],
    )
    return 0


async def requeue(config: Config, ids: list[str], *, all_dead: bool) -> int:
    async with database(config) as engine:
        outbox = Outbox(engine)
        count = await outbox.requeue_deliveries(time.time(), ids=ids, all_dead=all_dead)
    print(
        f"{plural(count, 'dead delivery', 'dead deliveries')} queued again; a running daemon "
        "sends them shortly"
    )
    return 0 if count or all_dead else 1
