"""`replay`: a dry run of a configuration's notification rules over the stored changes, next
to what was actually delivered. "Would my new rule have caught last night's drop?"

It routes what the daemon routes: the configuration's events and the watches the database
holds besides (added through the API or the CLI, or found by searches)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from monitor.cli.common import EXIT_CONFIG, Commands, command, database, load, table, when
from monitor.cli.history import moment
from monitor.config import Config
from monitor.in_force import with_watches
from monitor.models import Change, DeliveryState
from monitor.notify.dry_run import Fate, Planned, replay
from monitor.notify.quiet import QuietHours
from monitor.polling.watchlist import watchlist
from monitor.store.reads import DeliveryFate, Reads
from monitor.store.watches import StoredWatch, Watches


def register(commands: Commands) -> None:
    replaying = command(
        commands,
        "replay",
        _replay,
        "dry-run a configuration's notification rules over the stored changes",
        examples=("replay --config new.yaml --since 7d", "replay --config new.yaml --event E1"),
    )
    replaying.add_argument(
        "--since", metavar="WHEN", default="7d", help="a duration ago or a date-time (default 7d)"
    )
    replaying.add_argument("--event", metavar="ID", help="only this event's changes")


def _replay(args: argparse.Namespace) -> int:
    since = moment(args.since, time.time())
    if since is None:
        print(
            f"error: --since: expected a duration or a date-time, got {args.since!r}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    return asyncio.run(print_replay(load(args.config), args.config, since, args.event))


async def print_replay(config: Config, path: Path, since: float, event_id: str | None) -> int:
    async with database(config) as engine:
        reads = Reads(engine)
        changes = [change async for change in reads.every_change(since, event_id)]
        actual = await reads.deliveries_of([change.id for change in changes])
        # What the daemon routes: the file's watches, and those the API or a search added.
        stored = await Watches(engine).stored()
    planned = _planned(config, changes, stored)
    print(f"{len(changes)} changes since {when(since)} under {path}")
    if not planned:
        return 0
    happened = {(fate.change_id, fate.notifier): fate for fate in actual}
    rows = [_row(item, happened.get((item.change.id, item.notifier))) for item in planned]
    table(("TIME", "EVENT", "NOTIFIER", "WOULD", "ACTUALLY", ""), rows)
    differ = sum(1 for row in rows if row[-1])
    print(f"\n{differ} of {len(rows)} outcomes differ from what was delivered")
    return 0


def _planned(config: Config, changes: list[Change], stored: Sequence[StoredWatch]) -> list[Planned]:
    """What the configuration would have done with `changes`."""
    watches = watchlist(with_watches(config, stored))
    return replay(
        changes,
        lambda event: watches[event].targets if event in watches else (),
        list(config.notifiers),
        {name: n.group_window or 0.0 for name, n in config.notifiers.items()},
        {
            name: hours
            for name, n in config.notifiers.items()
            if (hours := QuietHours.of(n.quiet_hours)) is not None
        },
    )


def _row(item: Planned, actual: DeliveryFate | None) -> tuple[str, ...]:
    would = {
        Fate.SENT: f"sent {when(item.at)}",
        Fate.SUPERSEDED: "superseded",
        Fate.NOT_ROUTED: "not routed",
    }[item.fate]
    if actual is None:
        did, same = "not routed", item.fate is Fate.NOT_ROUTED
    elif actual.state == DeliveryState.DELIVERED:
        did, same = f"sent {when(actual.finished_at)}", item.fate is Fate.SENT
    else:
        did, same = actual.state, item.fate.value == actual.state
    return (
        when(item.change.observed_at),
        _event(item.change),
        item.notifier,
        would,
        did,
        "" if same else "≠",
    )


def _event(change: Change) -> str:
    return f"{change.event_name} ({change.event_id})" if change.event_name else change.event_id
