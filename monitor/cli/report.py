"""What the reporting and maintenance commands do: status, history, deliveries, notify test."""

from __future__ import annotations

import csv
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import orjson

from monitor.config import Config
from monitor.errors import DeliveryError
from monitor.models import (
    Availability,
    Change,
    Delivery,
    Health,
    ResaleStatus,
    Status,
    UpstreamStatus,
)
from monitor.notify.notifiers import build_notifier
from monitor.redact import redact, redactor
from monitor.store.engine import create_engine, upgrade
from monitor.store.outbox import Outbox
from monitor.store.repository import Repository
from monitor.times import iso


@asynccontextmanager
async def _repository(config: Config) -> AsyncIterator[Repository]:
    engine = create_engine(config.database.url)
    try:
        await upgrade(engine)
        yield Repository(engine)
    finally:
        await engine.dispose()


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


def _transitions(change: Change) -> tuple[str, str]:
    before = change.previous
    return (
        f"{before.status if before else '-'} → {change.current.status}",
        f"{before.resale_status if before else '-'} → {change.current.resale_status}",
    )


def _when(timestamp: float | None) -> str:
    return "-" if timestamp is None else iso(timestamp)


def _upstream_line(status: UpstreamStatus) -> str:
    words = {
        Health.OK: "ok",
        Health.DEGRADED: "degraded: polls are failing",
        Health.QUOTA_EXHAUSTED: "paused: the daily quota is used up",
        Health.INVALID_API_KEY: "the API key is refused",
    }[status.health]
    parts = [f"upstream: {words}"]
    if status.health is not Health.OK and status.since is not None:
        parts.append(f"since {iso(status.since)}")
    if status.paused_until is not None and status.health is not Health.OK:
        parts.append(f"next try {iso(status.paused_until)}")
    if status.last_success_at is not None:
        parts.append(f"last success {iso(status.last_success_at)}")
    quota = status.quota
    if quota.available is not None:
        of = f" of {quota.limit:,}" if quota.limit else ""
        resets = f" (resets {iso(quota.reset_at)})" if quota.reset_at else ""
        parts.append(f"quota left {quota.available:,}{of}{resets}")
    line = "; ".join(parts)
    if status.health is not Health.OK and status.last_error:
        line += f"\n  last error: {redact(status.last_error)}"
    return line


async def print_status(config: Config) -> int:
    async with _repository(config) as repository:
        rows = await repository.event_rows()
        upstream = await repository.load_upstream()
    print(_upstream_line(upstream))
    if not rows:
        print("no events have been polled yet")
        return 0
    _table(
        ("EVENT", "NAME", "STATUS", "RESALE", "LAST CHANGE", "LAST SEEN"),
        [
            (
                row.event_id,
                row.name or "-",
                row.current.status if row.current else "(no reading yet)",
                row.current.resale_status if row.current else "-",
                _when(row.last_changed_at),
                _when(row.last_seen_at),
            )
            for row in rows
        ],
    )
    return 0


async def print_history(config: Config, event_id: str) -> int:
    async with _repository(config) as repository:
        row = await repository.event_row(event_id)
        if row is None:
            print(f"event {event_id} is not in the database", file=sys.stderr)
            return 1
        snapshots = await repository.snapshots_of(event_id)
        changes = await repository.changes_of(event_id)
    print(f"{row.name or event_id} ({event_id}){'' if row.watched else ' — no longer watched'}")
    print(f"first seen {_when(row.first_seen_at)}, last seen {_when(row.last_seen_at)}")
    print("\nchanges:")
    if changes:
        _table(
            ("TIME", "STATUS", "RESALE"),
            [(iso(c.observed_at), *_transitions(c)) for c in changes],
        )
    else:
        print("  none")
    print("\nsnapshots:")
    if snapshots:
        _table(
            ("TIME", "STATUS", "RESALE"),
            [(iso(at), a.status, a.resale_status) for at, a in snapshots],
        )
    else:
        print("  none")
    return 0


async def print_deliveries(config: Config, *, dead_only: bool, limit: int) -> int:
    async with _repository(config) as repository:
        rows = await Outbox(repository.engine).list_deliveries(dead_only=dead_only, limit=limit)
    if not rows:
        print("no dead deliveries" if dead_only else "no deliveries yet")
        return 0
    _table(
        ("ID", "NOTIFIER", "EVENT", "STATE", "ATTEMPTS", "CREATED", "LAST ERROR"),
        [
            (
                r.id,
                r.notifier,
                r.event_id,
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
    async with _repository(config) as repository:
        outbox = Outbox(repository.engine)
        count = await outbox.requeue_deliveries(time.time(), ids=ids, all_dead=all_dead)
    print(f"{count} dead deliveries are queued again; a running daemon sends them shortly")
    return 0 if count or all_dead else 1


async def send_test(config: Config, name: str) -> int:
    """Send a clearly marked test message through one notifier, outside the outbox."""
    redactor.add(config.secrets())
    now = time.time()
    change = Change(
        id=f"test_{uuid.uuid4().hex}",
        event_id="TEST",
        event_name="inventory-monitor test message — not a real change",
        previous=Availability(Status.TICKETS_NOT_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE),
        current=Availability(Status.TICKETS_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE),
        observed_at=now,
    )
    notifier = build_notifier(name, config.notifiers[name])
    try:
        answer = await notifier.send(Delivery(f"test_{uuid.uuid4().hex}", name, change, 1, now))
    except DeliveryError as exc:
        print(f"{name}: failed: {redact(str(exc))}")
        return 1
    finally:
        await notifier.aclose()
    print(f"{name}: sent ({answer})")
    return 0


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
    from monitor.store.reads import Reads

    async with _repository(config) as repository:
        reads = Reads(repository.engine)
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
