"""The dashboard: one server-rendered page, paged and filterable, that refreshes its own
figures by fetching a fragment of itself (no front-end build step)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from aiohttp import web

from monitor.config.fields import REGIONS
from monitor.models import STATUS_BY_NAME, Change, ChangeKind, Status
from monitor.notify.rendering import headline
from monitor.server.context import CONTEXT, Context
from monitor.server.forms import SNOOZES, WHO, csrf_value, entry_of, read_form, refused
from monitor.server.pages import render
from monitor.server.writes import status_of
from monitor.store.reads import DeliveryFate, Troubled
from monitor.store.rows import EventRow
from monitor.store.watches import AuditEntry
from monitor.times import iso, local_time, next_poll
from monitor.upstream.quota import pace_shown
from monitor.watching import Forbidden, WatchError, WatchView
from monitor.wording import RESALE_WORDS, STATUS_WORDS, ago, why_unknown

MAX_PAGES = 1000
"""Pages are offsets: beyond this many, filter instead."""
PAGE_SIZE = 100
TIMELINE_DAYS = 3
RECENT_CHANGES = 15
EVENT_CHANGES = 1000
TROUBLED = 10

LABELS = STATUS_WORDS
"""Words on the status pills; the code is in the tooltip."""
RESALE_LABELS = RESALE_WORDS
LEGEND = (
    ("TICKETS_AVAILABLE", "tickets can be bought"),
    ("FEW_TICKETS_LEFT", "few tickets left: it may sell out any minute"),
    ("TICKETS_NOT_AVAILABLE", "none to buy now; releases can come back"),
    ("UNKNOWN", "Ticketmaster does not say (yet)"),
)


@dataclass(frozen=True, slots=True)
class Segment:
    status: str
    left: float
    width: float
    """Percentages of the timeline."""


def timeline(
    row: EventRow,
    event_changes: list[Change],
    start: float,
    now: float,
    field: str = "status",
) -> list[Segment]:
    """The event's `field` (status or resale_status) over [start, now] as coloured
    segments, from its changes. Only what was observed is drawn: before the first reading
    the bar stays blank (not watched yet)."""
    span = now - start
    if row.current is None or span <= 0:
        return []
    watched_from = max(start, row.first_seen_at or start)
    changes = [change for change in event_changes if change.kind is ChangeKind.INVENTORY]
    points: list[tuple[float, str]] = []
    if changes:
        first = changes[0]
        before = getattr(first.previous, field).value if first.previous else "NONE"
        points.append((min(watched_from, first.observed_at), before))
        points.extend(
            (change.observed_at, getattr(change.current, field).value) for change in changes
        )
    else:
        points.append((watched_from, getattr(row.current, field).value))
    segments = []
    for index, (at, status) in enumerate(points):
        end = points[index + 1][0] if index + 1 < len(points) else now
        begin = max(at, start)
        if end > begin:
            segments.append(
                Segment(status, (begin - start) / span * 100, (end - begin) / span * 100)
            )
    return segments


async def add(request: web.Request) -> web.Response:
    """The Add form: the new watch's page, or the list again with what was typed and what
    is wrong with it."""
    entered: dict[str, Any] = {}
    try:
        watching, form = await read_form(request)
        entered = entry_of(form)
        view = await watching.add(entered, WHO)
    except WatchError as exc:
        if exc.field in ("id", "url"):
            exc.field = "event"
        if isinstance(exc, Forbidden):
            return refused(request, "add the watch", exc)
        return await page(request, entered=entered, problem=exc)
    raise web.HTTPSeeOther(f"/events/{quote(view.event_id, safe='')}")


async def page(
    request: web.Request,
    *,
    entered: Mapping[str, Any] | None = None,
    problem: WatchError | None = None,
) -> web.Response:
    """The dashboard; after a refused Add, with the form as it was sent and why."""
    context = request.app[CONTEXT]
    query = request.query
    status = STATUS_BY_NAME.get(query.get("status", ""))
    search = query.get("q", "").strip() or None
    text = query.get("page", "1")
    number = int(text) if text.isascii() and text.isdigit() and len(text) <= 4 else 1
    number = min(max(1, number), MAX_PAGES)
    now = context.clock()
    # Keyset pages need the previous page's last ID; offsets stay cheap at dashboard sizes.
    events_page = await context.reads.events_page(
        limit=PAGE_SIZE * number, status=status, search=search, with_paused=True, by_date=True
    )
    # A page past the end shows the last one; its rows are among those read.
    pages = max(1, -(-events_page.total // PAGE_SIZE))
    number = min(number, pages)
    rows = events_page.rows[PAGE_SIZE * (number - 1) : PAGE_SIZE * number]
    start = now - TIMELINE_DAYS * 86400
    by_event: dict[str, list[Change]] = {}
    for change in await context.reads.changes_of_events([r.event_id for r in rows], start):
        by_event.setdefault(change.event_id, []).append(change)
    recent = await context.reads.changes_of(limit=RECENT_CHANGES)
    upstream = context.upstream.status
    on_sale = (await context.reads.events_page(limit=1, status=Status.TICKETS_AVAILABLE)).total
    troubled = await context.reads.troubled_deliveries(TROUBLED)

    def link(**changes: Any) -> str:
        params = {"q": search or "", "status": status.value if status else "", "page": number}
        params.update(changes)
        return "?" + urlencode({k: v for k, v in params.items() if v not in ("", None, 1)})

    values = {
        "rows": [
            {
                "row": row,
                "segments": timeline(row, by_event.get(row.event_id, []), start, now),
                "changed": ago(None if row.last_changed_at is None else now - row.last_changed_at),
                "seen": ago(None if row.last_seen_at is None else now - row.last_seen_at),
                "starts": local_time(row.info.starts_at, row.info.timezone),
                "venue": ", ".join(p for p in (row.info.venue.name, row.info.venue.city) if p),
                "why": why_unknown(row.detail and row.detail.status),
            }
            for row in rows
        ],
        "recent": [
            {
                "change": change,
                "when": ago(now - change.observed_at),
                "at": iso(change.observed_at),
                "news": None if change.kind is ChangeKind.INVENTORY else headline(change),
            }
            for change in reversed(recent)
        ],
        "total": events_page.total,
        "troubled": _by_notifier(troubled),
        "title": f"({on_sale:,} on sale) inventory-monitor" if on_sale else "inventory-monitor",
        "labels": LABELS,
        "resale_labels": RESALE_LABELS,
        "legend": [(code, LABELS[code], meaning) for code, meaning in LEGEND],
        "page": number,
        "pages": pages,
        "link": link,
        "search": search or "",
        "status": status.value if status else "",
        "statuses": [s.value for s in Status],
        "upstream": upstream,
        "last_success": ago(
            None if upstream.last_success_at is None else now - upstream.last_success_at
        ),
        "paced": pace_shown(upstream.quota, now, context.config.ticketmaster.requests_per_second),
        "refresh_ms": int(context.config.server.refresh * 1000),
        "days": TIMELINE_DAYS,
        "iso": iso,
        "people": await _people(context),
        "searches": [] if context.following is None else await context.following.searches(),
        "entered": _entered(entered),
        "problem": problem,
        "removed": await _removed(context, query.get("removed")),
        **_controls(context),
    }
    return render(
        request,
        "live.html" if query.get("fragment") == "1" else "dashboard.html",
        values,
        status=200 if problem is None else status_of(problem),
    )


def _entered(entered: Mapping[str, Any] | None) -> dict[str, Any]:
    """The Add form's fields as they were sent."""
    entered = entered or {}
    return {
        "event": entered.get("url") or entered.get("id") or "",
        "name": entered.get("name", ""),
        "region": entered.get("region", ""),
        "notify": entered.get("notify", ()),
    }


async def _removed(context: Context, event_id: str | None) -> dict[str, str] | None:
    """The watch just removed, to be restored in a moment if that was a slip."""
    if not event_id or context.watching is None or not context.writable:
        return None
    rows = await context.reads.event_rows_of([event_id])
    row = rows.get(event_id)
    if row is None or row.watched:
        return None
    return {"event_id": event_id, "name": row.info.name or event_id}


async def _people(context: Context) -> list[dict[str, Any]]:
    """The users, with what their subscriptions add to the requests a day, costliest first."""
    if context.users is None:
        return []
    shares = context.shares()
    people = [
        {
            "name": user.name,
            "role": user.role.value,
            "disabled": user.disabled,
            "share": shares.get(user.name, 0.0),
        }
        for user in await context.users.list()
    ]
    return sorted(people, key=lambda person: (-person["share"], person["name"]))


def _controls(context: Context) -> dict[str, Any]:
    """What the pages' forms need; they are shown only while writes are enabled."""
    return {
        "writable": context.writable,
        "csrf": csrf_value(context) if context.writable else "",
        "notifiers": sorted(context.config.notifiers),
        "snoozes": SNOOZES,
        "regions": [(code, f"Sold in {code}") for code in REGIONS],
    }


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
        "changes": [
            {
                "change": change,
                "what": _what(change),
                "at": iso(change.observed_at),
                "deliveries": fates.get(change.id, []),
            }
            for change in reversed(history)
        ],
        "labels": LABELS,
        "resale_labels": RESALE_LABELS,
        "watch": watch,
        "audit": [
            _audit_item(entry)
            for entry in (
                [] if context.watching is None else await context.watching.audit(event_id)
            )
        ],
        "snoozed_until": None
        if watch is None or watch.snoozed_until is None or watch.snoozed_until <= now
        else iso(watch.snoozed_until),
        **_controls(context),
    }
    return render(request, "event.html", values)


async def _watch(context: Context, event_id: str) -> WatchView | None:
    if context.watching is None:
        return None
    try:
        return await context.watching.get(event_id)
    except WatchError:
        return None  # watched no longer: its page shows its history alone


def _by_notifier(troubled: list[Troubled]) -> list[dict[str, Any]]:
    """Failing deliveries, one entry per notifier: a receiver that is down shows once, with
    how many wait for it, not once per delivery."""
    groups: dict[str, dict[str, Any]] = {}
    for item in troubled:
        group = groups.setdefault(
            item.notifier,
            {"notifier": item.notifier, "items": [], "dead": 0, "error": item.last_error},
        )
        group["items"].append({"delivery": item, "next": iso(item.next_attempt_at)})
        group["dead"] += item.state == "dead"
    return list(groups.values())


_ACTIONS = {
    "add": "Watched",
    "change": "Settings changed",
    "pause": "Paused",
    "resume": "Resumed",
    "remove": "No longer watched",
    "restore": "Watched again (removal undone)",
}


def said(entry: AuditEntry) -> tuple[str, float | None]:
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
    words, until = said(entry)
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
