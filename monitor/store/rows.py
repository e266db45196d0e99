"""Row mappers: database rows to value types, shared by every module of the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.markets import event_link
from monitor.models import (
    RESALE_BY_NAME,
    STATUS_BY_NAME,
    Availability,
    Change,
    ChangeKind,
    EventInfo,
    SaleOpening,
    StatusDetail,
    Venue,
)
from monitor.store.tables import batches, changes, event_details, events, watches

# Every possible stored pair, built once: claims turn thousands of rows into states.
AVAILABILITY = {
    (status.value, resale.value): Availability(status, resale)
    for status in STATUS_BY_NAME.values()
    for resale in RESALE_BY_NAME.values()
}


def availability(status: str | None, resale: str | None) -> Availability | None:
    if status is None or resale is None:
        return None
    return AVAILABILITY[status, resale]


@dataclass(frozen=True, slots=True)
class EventRow:
    event_id: str
    name: str | None
    watched: bool
    current: Availability | None
    first_seen_at: float | None
    last_seen_at: float | None
    last_changed_at: float | None
    next_due_at: float | None
    info: EventInfo
    found_by: str | None = None
    """The `discover:` search that added the event; None for the configuration's own."""
    polling_now: bool = False
    """A poll of its batch is in flight (`next_due_at` is then when its claim lapses)."""
    detail: StatusDetail | None = None
    """Why Ticketmaster last answered UNKNOWN for it, if it did."""
    paused: bool = False
    """Its watch is paused: it is not polled, and stays listed."""


INFO_COLUMNS = (
    events.c.link.label("info_link"),
    events.c.market.label("info_market"),
    event_details.c.name.label("info_name"),
    event_details.c.url.label("info_url"),
    event_details.c.starts_at.label("info_starts_at"),
    event_details.c.timezone.label("info_timezone"),
    event_details.c.venue_name.label("info_venue_name"),
    event_details.c.venue_city.label("info_venue_city"),
    event_details.c.venue_country.label("info_venue_country"),
    event_details.c.lifecycle.label("info_lifecycle"),
)
"""What `info_from_row` reads: select them with `events` and `event_details` joined."""

EVENT_ROWS = select(
    events,
    batches.c.next_due_at,
    batches.c.last_polled_at,
    batches.c.claimed_by,
    watches.c.search,
    watches.c.paused.label("watch_paused"),
    *INFO_COLUMNS,
).select_from(
    events.outerjoin(batches, events.c.batch_id == batches.c.id)
    .outerjoin(event_details, event_details.c.event_id == events.c.event_id)
    .outerjoin(watches, watches.c.event_id == events.c.event_id)
)


def info_from_row(event_id: str, name: str | None, row: Any) -> EventInfo:
    """An event's details from a row with `INFO_COLUMNS`: the configured name before
    Discovery's, and the configured link before Discovery's, before the market's site."""
    return EventInfo(
        name=name or row.info_name,
        starts_at=row.info_starts_at,
        timezone=row.info_timezone,
        venue=Venue(row.info_venue_name, row.info_venue_city, row.info_venue_country),
        url=row.info_link or row.info_url or event_link(event_id, row.info_market),
        lifecycle=row.info_lifecycle,
    )


def event_from_row(row: Any) -> EventRow:
    read_with_batch = row.read_in_last_poll and row.last_polled_at is not None
    return EventRow(
        event_id=row.event_id,
        name=row.name,
        watched=row.batch_id is not None,
        current=availability(row.status, row.resale_status),
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_polled_at if read_with_batch else row.last_seen_at,
        last_changed_at=row.last_changed_at,
        next_due_at=row.next_due_at,
        info=info_from_row(row.event_id, row.name, row),
        found_by=row.search,
        polling_now=row.claimed_by is not None,
        paused=bool(row.watch_paused),
        detail=None
        if row.status_detail is None and row.resale_status_detail is None
        else StatusDetail(row.status_detail, row.resale_status_detail),
    )


def change_from_row(row: Any) -> Change:
    """A change; with its event's details when the row has `INFO_COLUMNS`."""
    kind = ChangeKind(row.kind)
    detail = orjson.loads(row.detail) if row.detail else {}
    return Change(
        id=row.id,
        event_id=row.event_id,
        event_name=row.event_name,
        previous=availability(row.previous_status, row.previous_resale_status),
        current=AVAILABILITY[row.status, row.resale_status],
        observed_at=row.observed_at,
        event=info_from_row(row.event_id, row.event_name, row)
        if "info_link" in row._fields
        else None,
        lifecycle=(detail.get("previous"), detail["current"])
        if kind is ChangeKind.LIFECYCLE
        else None,
        sale=SaleOpening(detail["kind"], detail.get("name"), detail["starts_at"])
        if kind is ChangeKind.SALE_OPENED
        else None,
    )


CHANGES_WITH_INFO = select(changes, *INFO_COLUMNS).select_from(
    changes.outerjoin(events, events.c.event_id == changes.c.event_id).outerjoin(
        event_details, event_details.c.event_id == changes.c.event_id
    )
)


async def changes_by_id(conn: AsyncConnection, ids: list[str]) -> dict[str, Change]:
    """Changes with their events' details, as messages show them."""
    query = CHANGES_WITH_INFO.where(changes.c.id.in_(set(ids)))
    rows = (await conn.execute(query)).all()
    return {row.id: change_from_row(row) for row in rows}
