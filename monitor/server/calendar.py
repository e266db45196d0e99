"""A user's shows as an iCalendar feed, for a phone's or a desktop's calendar to subscribe
to: each show at its start, and each public sale and presale opening as an event of its own,
with a reminder a quarter of an hour before, so the fan is ready when tickets go on sale.

The feed is opened by a key of its own (`?key=...`), never the user's API token: a calendar
app keeps the address in plain sight, and renewing the key (`POST /api/me/calendar`) ends
the old address. Pure, but for the handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from monitor.server.api import json_response
from monitor.server.context import CONTEXT
from monitor.store.event_details import Details, Show

if TYPE_CHECKING:
    from icalendar import Event

SHOW_LENGTH = timedelta(hours=3)
"""How long a show is drawn: Discovery gives its start alone."""
SALE_LENGTH = timedelta(minutes=30)
REMINDER = timedelta(minutes=15)
_SALE = {"public": "Public sale opens", "presale": "Presale opens"}


def feed(user: str, shows: Sequence[Show], now: float) -> bytes:
    # icalendar weighs some 7 MB: loaded when a feed is first asked for, not at start.
    from icalendar import Alarm, Calendar

    calendar = Calendar()
    calendar.add("prodid", "-//inventory-monitor//shows//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"{user}'s shows (inventory-monitor)")
    stamp = _moment(now)
    for show in shows:
        title = show.name or show.event_id
        if show.starts_at is not None:
            calendar.add_component(
                _event(
                    show.event_id,
                    title,
                    show,
                    _moment(show.starts_at),
                    length=SHOW_LENGTH,
                    stamp=stamp,
                )
            )
        for sale in show.sales:
            what = _SALE.get(sale.kind, "Sale opens")
            summary = f"{what}: {title}" + (f" ({sale.name})" if sale.name else "")
            event = _event(
                f"{show.event_id}-{sale.kind}-{int(sale.starts_at)}",
                summary,
                show,
                _moment(sale.starts_at),
                length=SALE_LENGTH,
                stamp=stamp,
            )
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", summary)
            alarm.add("trigger", -REMINDER)
            event.add_component(alarm)
            calendar.add_component(event)
    return bytes(calendar.to_ical())


def _event(
    uid: str, summary: str, show: Show, start: datetime, *, length: timedelta, stamp: datetime
) -> Event:
    from icalendar import Event

    event = Event()
    event.add("uid", f"{uid}@inventory-monitor")
    event.add("summary", summary)
    event.add("dtstart", start)
    event.add("dtend", start + length)
    event.add("dtstamp", stamp)
    if show.venue:
        event.add("location", show.venue)
    if show.url:
        event.add("url", show.url)
    return event


def _moment(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


async def calendar(request: web.Request) -> web.Response:
    """GET /api/me/calendar.ics?key=...: the feed of the user whose key it is."""
    context = request.app[CONTEXT]
    key = request.query.get("key", "")
    user = None if context.users is None or not key else await context.users.calendar_user(key)
    if user is None or context.subscribing is None:
        return json_response(
            {"error": "no calendar has this key (POST /api/me/calendar makes one)", "field": "key"},
            404,
        )
    followed = [
        view.subscription.event_id for view in await context.subscribing.subscriptions(user)
    ]
    shows = await Details(context.reads.engine).shows(followed) if followed else []
    return web.Response(
        body=feed(user.name, shows, context.clock()),
        content_type="text/calendar",
        charset="utf-8",
        headers={"Cache-Control": "private, max-age=300"},
    )
