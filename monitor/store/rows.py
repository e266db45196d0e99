"""Row mappers: database rows to value types, shared by every module of the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.models import RESALE_BY_NAME, STATUS_BY_NAME, Availability, Change
from monitor.store.tables import batches, changes, events

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


EVENT_ROWS = select(events, batches.c.next_due_at, batches.c.last_polled_at).select_from(
    events.outerjoin(batches, events.c.batch_id == batches.c.id)
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
    )


def change_from_row(row: Any) -> Change:
    return Change(
        id=row.id,
        event_id=row.event_id,
        event_name=row.event_name,
        previous=availability(row.previous_status, row.previous_resale_status),
        current=AVAILABILITY[row.status, row.resale_status],
        observed_at=row.observed_at,
    )


async def changes_by_id(conn: AsyncConnection, ids: list[str]) -> dict[str, Change]:
    rows = (await conn.execute(select(changes).where(changes.c.id.in_(set(ids))))).all()
    return {row.id: change_from_row(row) for row in rows}
