"""What the database says: `status` of every watched event, one event's `history`, and an
`export` of the timeline of changes."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import time
from datetime import UTC, datetime

import orjson

from monitor.cli.common import EXIT_CONFIG, Commands, command, database, load, table, when
from monitor.config import Config
from monitor.models import Change, ChangeKind, Health, Quota, UpstreamStatus
from monitor.notify.rendering import headline
from monitor.redact import redact
from monitor.store.reads import Reads
from monitor.store.repository import Repository
from monitor.store.rows import EventRow
from monitor.times import iso, local_time, next_poll, parse_duration
from monitor.upstream.inventory import availability_endpoint
from monitor.upstream.quota import pace_shown
from monitor.upstream.sizing import START
from monitor.wording import RESALE_WORDS, STATUS_WORDS, ago, why_unknown


def register(commands: Commands) -> None:
    status = command(
        commands,
        "status",
        _status,
        "print the current state of every watched event",
        examples=("status --config config/monitor.yaml", "status --wide"),
    )
    status.add_argument(
        "--wide", action="store_true", help="every column, with the API's codes and exact times"
    )
    history = command(
        commands,
        "history",
        _history,
        "print the snapshots and changes of one event",
        examples=("history vvG1zZ9pCY3Sp3", "history 'Eras Tour'"),
    )
    history.add_argument("event", help="the event's ID, or its name (or part of it)")
    export = command(
        commands,
        "export",
        _export,
        "write the timeline of changes as CSV or JSON",
        examples=("export --since 7d --format json", "export --event vvG1zZ9pCY3Sp3 | head"),
    )
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--event", metavar="ID", help="only this event's changes")
    export.add_argument(
        "--since",
        metavar="WHEN",
        help="only changes since then: a duration ago (1h, 7d) or an ISO 8601 date-time (UTC)",
    )


def _status(args: argparse.Namespace) -> int:
    return asyncio.run(print_status(load(args.config), wide=args.wide))


def _history(args: argparse.Namespace) -> int:
    return asyncio.run(print_history(load(args.config), args.event))


def _export(args: argparse.Namespace) -> int:
    since = None
    if args.since is not None:
        since = moment(args.since, time.time())
        if since is None:
            print(
                f"error: --since: expected a duration such as 1h or 7d, or an ISO 8601 "
                f"date-time, got {args.since!r}",
                file=sys.stderr,
            )
            return EXIT_CONFIG
    config = load(args.config)
    return asyncio.run(export_changes(config, args.format, args.event, since))


def moment(text: str, now: float) -> float | None:
    """`1h` means an hour ago; anything else is an ISO 8601 date-time (UTC without an
    offset). None when it is neither."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


async def _by_name(reads: Reads, wanted: str) -> EventRow | None:
    """The one event whose name is `wanted` (or, failing that, contains it); otherwise say
    why not: nothing matches, or which events do."""
    matches = _named(await reads.event_rows(watched_only=False), wanted)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        print(f"no event with the ID or name {wanted!r} is in the database", file=sys.stderr)
        return None
    print(f"{len(matches)} events match {wanted!r}; name one by its ID:", file=sys.stderr)
    for row in matches[:20]:
        print(f"  {row.event_id}  {row.name}", file=sys.stderr)
    return None


def _named(rows: list[EventRow], wanted: str) -> list[EventRow]:
    """The rows named `wanted` (any case); failing that, those whose name holds it."""
    key = wanted.casefold()
    names = [(row, row.name.casefold()) for row in rows if row.name]
    return [row for row, name in names if name == key] or [
        row for row, name in names if key in name
    ]


def _transitions(change: Change) -> tuple[str, str]:
    if change.kind is not ChangeKind.INVENTORY:
        return headline(change), "-"
    before = change.previous
    return (
        f"{before.status if before else '-'} → {change.current.status}",
        f"{before.resale_status if before else '-'} → {change.current.resale_status}",
    )


def _upstream_line(status: UpstreamStatus, now: float, rate: float) -> str:
    words = status.health.words
    if status.health is Health.OK and status.last_success_at is None:
        words = "no poll yet"
    parts = [f"upstream: {words}"]
    if status.health is not Health.OK and status.since is not None:
        parts.append(f"since {iso(status.since)}")
    if status.paused_until is not None and status.health is not Health.OK:
        parts.append(f"next try {iso(status.paused_until)}")
    if status.last_success_at is not None:
        parts.append(f"last success {iso(status.last_success_at)}")
    parts.extend(_quota_parts(status.quota, now, rate))
    line = "; ".join(parts)
    if status.health is not Health.OK and status.last_error:
        line += f"\n  last error: {redact(status.last_error)}"
    return line


def _quota_parts(quota: Quota, now: float, rate: float) -> list[str]:
    """What is left of the quota, and the pace that makes it last, once an answer said."""
    if quota.available is None:
        return []
    of = f" of {quota.limit:,}" if quota.limit else ""
    resets = f" (resets {iso(quota.reset_at)})" if quota.reset_at else ""
    parts = [f"quota left {quota.available:,}{of}{resets}"]
    every = pace_shown(quota, now, rate)
    if every is not None:
        parts.append(f"paced to one request every {every} so that it lasts until the reset")
    return parts


def _request_size_line(pinned: int | None, learnt: int | None) -> str:
    if pinned is not None:
        return f"requests: up to {pinned:,} event IDs each (ticketmaster.batch_size)"
    if learnt is None:
        return f"requests: up to {START:,} event IDs each, to grow as requests pass"
    return f"requests: up to {learnt:,} event IDs each (learnt)"


async def print_status(config: Config, *, wide: bool = False) -> int:
    async with database(config) as engine:
        rows = await Reads(engine).event_rows()
        repository = Repository(engine)
        upstream = await repository.load_upstream()
        tm = config.ticketmaster
        endpoint = availability_endpoint(tm.base_url)
        learnt = await repository.load_request_size(endpoint)
    now = time.time()
    print(_upstream_line(upstream, now, config.ticketmaster.requests_per_second))
    print(_request_size_line(tm.pinned_batch_size, learnt))
    if not rows:
        print("no events have been polled yet")
        return 0
    if wide:
        _wide(rows, now)
    else:
        _narrow(rows, now)
        for row in rows:
            why = why_unknown(row.detail and row.detail.status)
            if why is not None and row.detail is not None:
                print(f"{row.event_id}: {why} ({row.detail.status})")
    return 0


NAME_WIDTH = 30
"""The narrow table's name column: with the others, it fits 100 columns."""


def _narrow(rows: list[EventRow], now: float) -> None:
    """What a person scans for: which show, when, and whether tickets can be had."""

    def name(row: EventRow) -> str:
        text = row.info.name or "-"
        return text if len(text) <= NAME_WIDTH else text[: NAME_WIDTH - 1] + "…"

    table(
        ("EVENT", "NAME", "STARTS", "STATUS", "RESALE", "CHANGED"),
        [
            (
                row.event_id,
                name(row),
                local_time(row.info.starts_at, row.info.timezone, "%a %d %b %H:%M") or "-",
                STATUS_WORDS[row.current.status.value] if row.current else "not read yet",
                RESALE_WORDS[row.current.resale_status.value] if row.current else "-",
                ago(None if row.last_changed_at is None else now - row.last_changed_at),
            )
            for row in rows
        ],
    )


def _wide(rows: list[EventRow], now: float) -> None:
    table(
        (
            "EVENT",
            "NAME",
            "STARTS",
            "VENUE",
            "STATUS",
            "RESALE",
            "WHY UNKNOWN",
            "LAST CHANGE",
            "LAST SEEN",
            "NEXT POLL",
        ),
        [_wide_row(row, now) for row in rows],
    )


def _wide_row(row: EventRow, now: float) -> tuple[str, ...]:
    current = row.current
    return (
        row.event_id,
        (row.info.name or "-") + (f" (found by {row.found_by})" if row.found_by else ""),
        local_time(row.info.starts_at, row.info.timezone) or "-",
        ", ".join(p for p in (row.info.venue.name, row.info.venue.city) if p) or "-",
        current.status if current else "(no reading yet)",
        current.resale_status if current else "-",
        "/".join(d or "-" for d in row.detail) if row.detail else "-",
        when(row.last_changed_at),
        when(row.last_seen_at),
        next_poll(row.next_due_at, now, polling_now=row.polling_now),
    )


async def print_history(config: Config, wanted: str) -> int:
    async with database(config) as engine:
        reads = Reads(engine)
        row = await reads.event_row(wanted) or await _by_name(reads, wanted)
        if row is None:
            return 1
        event_id = row.event_id
        snapshots = await reads.snapshots_of(event_id)
        changes = await reads.changes_of(event_id)
    _print_event(row)
    _print_table("changes", [(iso(c.observed_at), *_transitions(c)) for c in changes])
    _print_table("snapshots", [(iso(at), a.status, a.resale_status) for at, a in snapshots])
    return 0


def _print_event(row: EventRow) -> None:
    """The event's name, date, venue, state in its life, link, and when it was seen."""
    info, event_id = row.info, row.event_id
    print(f"{info.name or event_id} ({event_id}){'' if row.watched else ' — no longer watched'}")
    venue = ", ".join(p for p in (info.venue.name, info.venue.city) if p)
    facts = [local_time(info.starts_at, info.timezone), venue, info.lifecycle or "", info.url or ""]
    print("  ".join(fact for fact in facts if fact))
    print(f"first seen {when(row.first_seen_at)}, last seen {when(row.last_seen_at)}")


def _print_table(title: str, rows: list[tuple[str, ...]]) -> None:
    print(f"\n{title}:")
    if rows:
        table(("TIME", "STATUS", "RESALE"), rows)
    else:
        print("  none")


EXPORT_FIELDS = (
    "observed_at",
    "event_id",
    "event_name",
    "previous_status",
    "status",
    "previous_resale_status",
    "resale_status",
)


async def export_changes(
    config: Config, fmt: str, event_id: str | None, since: float | None
) -> int:
    """The timeline of changes on stdout, oldest first: CSV with a header, or a JSON array."""
    async with database(config) as engine:
        reads = Reads(engine)
        out = sys.stdout
        writer = csv.writer(out, lineterminator="\n")
        if fmt == "csv":
            writer.writerow(EXPORT_FIELDS)
        else:
            out.write("[")
        count = 0
        async for change in reads.every_change(since, event_id):
            previous = change.previous
            values = (
                iso(change.observed_at),
                change.event_id,
                change.event_name,
                previous and previous.status.value,
                change.current.status.value,
                previous and previous.resale_status.value,
                change.current.resale_status.value,
            )
            if fmt == "csv":
                writer.writerow(values)
            else:
                record = orjson.dumps(dict(zip(EXPORT_FIELDS, values, strict=True))).decode()
                out.write(("," if count else "") + "\n  " + record)
            count += 1
        if fmt == "json":
            out.write("\n]\n" if count else "]\n")
    return 0
