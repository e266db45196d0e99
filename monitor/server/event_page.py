"""An event's own page: what is known of it, its status and resale status since it was
first seen, every change with the deliveries it caused, and who changed its watch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from monitor.errors import Refused
from monitor.models import Change, ChangeKind
from monitor.notify.rendering import headline
from monitor.server.context import CONTEXT, Context
from monitor.server.dashboard import LABELS, RESALE_LABELS, controls, timeline
from monitor.server.pages import render
from monitor.store.reads import DeliveryFate
from monitor.store.watches import AuditEntry
from monitor.times import iso, local_time, next_poll
from monitor.watching import WatchView
from monitor.wording import why_unknown


async def event_page(request: web.Request) -> web.Response:
    """One event: what is known of it, its status and resale status since it was first
    seen, and every change with the deliveries it caused."""
    context = request.app[CONTEXT]
    event_id = request.match_info["event_id"]
    row = None if "\x00" in event_id else await context.reads.event_row(event_id)
    if row is None:
        raise web.HTTPNotFound(text=f"no event {event_id!r} has been watched")
    now = context.clock()
    start = row.first_seen_at or now
    history = await context.reads.changes_of(event_id, limit=EVENT_CHANGES)
    fates: dict[str, list[DeliveryFate]] = {}
    for fate in await context.reads.deliveries_of([change.id for change in history]):
        fates.setdefault(fate.change_id, []).append(fate)
    info = row.info
    watch = await _watch(context, event_id)
    values = {
        "row": row,
        "why": why_unknown(row.detail and row.detail.status),
        "info": info,
        "starts": local_time(info.starts_at, info.timezone),
        "venue": ", ".join(p for p in (info.venue.name, info.venue.city) if p),
        "first_seen": iso(start),
        "next_poll": next_poll(row.next_due_at, now, polling_now=row.polling_now),
        "status_bar": timeline(row, history, start, now),
        "resale_bar": timeline(row, history, start, now, "resale_status"),
        "changes": [_change(change, fates.get(change.id, [])) for change in reversed(history)],
        "labels": LABELS,
        "resale_labels": RESALE_LABELS,
        "watch": watch,
        "audit": [_audit_item(entry) for entry in await _audit(context, event_id)],
        "snoozed_until": _snoozed_until(watch, now),
        **controls(context),
    }
    return render(request, "event.html", values)


def _change(change: Change, fates: list[DeliveryFate]) -> dict[str, Any]:
    return {
        "change": change,
        "what": _what(change),
        "at": iso(change.observed_at),
        "deliveries": fates,
    }


async def _audit(context: Context, event_id: str) -> Sequence[AuditEntry]:
    return [] if context.watching is None else await context.watching.audit(event_id)


def _snoozed_until(watch: WatchView | None, now: float) -> str | None:
    if watch is None or watch.snoozed_until is None or watch.snoozed_until <= now:
        return None
    return iso(watch.snoozed_until)


async def _watch(context: Context, event_id: str) -> WatchView | None:
    if context.watching is None:
        return None
    try:
        return await context.watching.get(event_id)
    except Refused:
        return None  # watched no longer: its page shows its history alone


_ACTIONS = {
    "add": "Watched",
    "change": "Settings changed",
    "pause": "Paused",
    "resume": "Resumed",
    "remove": "No longer watched",
    "restore": "Watched again (removal undone)",
}


def _said(entry: AuditEntry) -> tuple[str, float | None]:
    """A write to a watch in words, and the moment they end with, if any ("Snoozed until"
    a time, which the page shows in the reader's own time zone)."""
    detail = orjson.loads(entry.detail) if entry.detail else None
    if entry.action == "snooze":
        until = detail.get("until") if isinstance(detail, dict) else None
        return ("Snooze ended", None) if until is None else ("Snoozed until", until)
    words = _ACTIONS.get(entry.action, entry.action.capitalize())
    if entry.action == "change" and isinstance(detail, dict) and detail:
        return f"{words}: {', '.join(sorted(detail))}", None
    return words, None


def _audit_item(entry: AuditEntry) -> dict[str, Any]:
    words, until = _said(entry)
    return {
        "entry": entry,
        "words": words,
        "at": _stamp(entry.at),
        "until": None if until is None else _stamp(until),
    }


def _stamp(at: float) -> dict[str, str]:
    """A moment for a `<time>`: machine-readable, and in words (UTC, until the page's
    script puts it in the reader's time zone)."""
    return {"iso": iso(at), "words": _moment(at)}


def _moment(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%a %-d %b %Y, %H:%M UTC")


def _what(change: Change) -> str:
    """A change in a fan's words."""
    if change.kind is not ChangeKind.INVENTORY:
        return headline(change)
    before, after = change.previous, change.current
    parts = []
    if before is None or before.status is not after.status:
        was = f"{LABELS[before.status.value]} → " if before else ""
        parts.append(f"{was}{LABELS[after.status.value]}")
    if before is not None and before.resale_status is not after.resale_status:
        parts.append(
            f"{RESALE_LABELS[before.resale_status.value]} → "
            f"{RESALE_LABELS[after.resale_status.value]}"
        )
    return "; ".join(parts)


EVENT_CHANGES = 1000
