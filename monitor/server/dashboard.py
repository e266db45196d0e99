"""The dashboard: one server-rendered page, paged and filterable, that refreshes its own
figures by fetching a fragment of itself (no front-end build step)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from monitor.config.fields import REGIONS
from monitor.errors import Forbidden, Refused
from monitor.models import STATUS_BY_NAME, Change, ChangeKind, Status
from monitor.notify.rendering import headline
from monitor.server.context import CONTEXT, Context
from monitor.server.forms import SNOOZES, WHO, csrf_value, entry_of, read_form, refused
from monitor.server.pages import render
from monitor.server.writes import status_of
from monitor.store.reads import Troubled
from monitor.store.rows import EventRow
from monitor.times import iso, local_time
from monitor.upstream.quota import pace_shown
from monitor.wording import RESALE_WORDS, STATUS_WORDS, ago, why_unknown

MAX_PAGES = 1000
"""Pages are offsets: beyond this many, filter instead."""
PAGE_SIZE = 100
TIMELINE_DAYS = 3
RECENT_CHANGES = 15
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
    except Refused as exc:
        if exc.field in ("id", "url"):
            exc.field = "event"
        if isinstance(exc, Forbidden):
            return refused(request, "add the watch", exc)
        return await page(request, entered=entered, problem=exc)
    raise web.HTTPSeeOther(f"/events/{quote(view.event_id, safe='')}")


def _page_number(text: str) -> int:
    number = int(text) if text.isascii() and text.isdigit() and len(text) <= 4 else 1
    return min(max(1, number), MAX_PAGES)


def _ago(at: float | None, now: float) -> str:
    return ago(None if at is None else now - at)


def _row(row: EventRow, changes: list[Change], start: float, now: float) -> dict[str, Any]:
    """What the list shows of one event."""
    return {
        "row": row,
        "segments": timeline(row, changes, start, now),
        "changed": _ago(row.last_changed_at, now),
        "seen": _ago(row.last_seen_at, now),
        "starts": local_time(row.info.starts_at, row.info.timezone),
        "venue": ", ".join(p for p in (row.info.venue.name, row.info.venue.city) if p),
        "why": why_unknown(row.detail and row.detail.status),
    }


def _recent(change: Change, now: float) -> dict[str, Any]:
    return {
        "change": change,
        "when": ago(now - change.observed_at),
        "at": iso(change.observed_at),
        "news": None if change.kind is ChangeKind.INVENTORY else headline(change),
    }


async def page(
    request: web.Request,
    *,
    entered: Mapping[str, Any] | None = None,
    problem: Refused | None = None,
) -> web.Response:
    """The dashboard; after a refused Add, with the form as it was sent and why."""
    context = request.app[CONTEXT]
    query = request.query
    status = STATUS_BY_NAME.get(query.get("status", ""))
    status_text = "" if status is None else status.value
    search = query.get("q", "").strip() or None
    number = _page_number(query.get("page", "1"))
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
    by_event = await _changes_by_event(context, rows, start)
    recent = await context.reads.changes_of(limit=RECENT_CHANGES)
    upstream = context.upstream.status
    on_sale = (await context.reads.events_page(limit=1, status=Status.TICKETS_AVAILABLE)).total
    troubled = await context.reads.troubled_deliveries(TROUBLED)

    values = {
        "rows": [_row(row, by_event.get(row.event_id, []), start, now) for row in rows],
        "recent": [_recent(change, now) for change in reversed(recent)],
        "total": events_page.total,
        "troubled": _by_notifier(troubled),
        "title": f"({on_sale:,} on sale) inventory-monitor" if on_sale else "inventory-monitor",
        "labels": LABELS,
        "resale_labels": RESALE_LABELS,
        "legend": [(code, LABELS[code], meaning) for code, meaning in LEGEND],
        "page": number,
        "pages": pages,
        "link": functools.partial(
            _link, {"q": search or "", "status": status_text, "page": number}
        ),
        "search": search or "",
        "status": status_text,
        "statuses": [s.value for s in Status],
        "upstream": upstream,
        "last_success": _ago(upstream.last_success_at, now),
        "paced": pace_shown(upstream.quota, now, context.config.ticketmaster.requests_per_second),
        "refresh_ms": int(context.config.server.refresh * 1000),
        "days": TIMELINE_DAYS,
        "iso": iso,
        "people": await _people(context),
        "searches": await _searches(context),
        "entered": _entered(entered),
        "problem": problem,
        "removed": await _removed(context, query.get("removed")),
        **controls(context),
    }
    return render(
        request,
        "live.html" if query.get("fragment") == "1" else "dashboard.html",
        values,
        status=200 if problem is None else status_of(problem),
    )


def _link(here: Mapping[str, Any], **changes: Any) -> str:
    """The query of the page `here` with `changes`: what is at its default is left out."""
    params = {**here, **changes}
    return "?" + urlencode({k: v for k, v in params.items() if v not in ("", None, 1)})


async def _changes_by_event(
    context: Context, rows: Sequence[EventRow], start: float
) -> dict[str, list[Change]]:
    by_event: dict[str, list[Change]] = {}
    for change in await context.reads.changes_of_events([r.event_id for r in rows], start):
        by_event.setdefault(change.event_id, []).append(change)
    return by_event


async def _searches(context: Context) -> list[dict[str, Any]]:
    return [] if context.following is None else await context.following.searches()


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


def controls(context: Context) -> dict[str, Any]:
    """What the pages' forms need; they are shown only while writes are enabled."""
    return {
        "writable": context.writable,
        "csrf": csrf_value(context) if context.writable else "",
        "notifiers": sorted(context.config.notifiers),
        "snoozes": SNOOZES,
        "regions": [(code, f"Sold in {code}") for code in REGIONS],
    }


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
