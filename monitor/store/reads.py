"""Read-side queries for the CLI, the HTTP API, the dashboard and the metrics: paged, indexed,
and never more rows than a page shows."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.models import Availability, Change, ChangeKind, DeliveryState, Status
from monitor.store.engine import reader
from monitor.store.rows import (
    AVAILABILITY,
    CHANGES_WITH_INFO,
    EVENT_ROWS,
    EventRow,
    change_from_row,
    event_from_row,
)
from monitor.store.tables import (
    batches,
    changes,
    deliveries,
    event_details,
    events,
    snapshots,
    watches,
)

MAX_PAGE = 5000
TOTAL_TTL = 2.0
"""Seconds a page's total count is reused: counting 100,000 rows on every page costs more
than the page itself."""
MAX_CACHED_TOTALS = 256


@dataclass(frozen=True, slots=True)
class EventPage:
    rows: list[EventRow]
    total: int
    """Watched events matching the filter, on every page."""
    next_after: str | None
    """The cursor for the next page: pass it as `after`."""


class DeliveryFate(NamedTuple):
    change_id: str
    notifier: str
    state: str
    finished_at: float | None


class Troubled(NamedTuple):
    """A delivery that failed: dead, or pending a retry."""

    id: str
    event_id: str
    event_name: str | None
    notifier: str
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None


@dataclass(frozen=True, slots=True)
class OutboxStats:
    pending: int
    oldest_created_at: float | None


class Reads:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)
        self._totals: dict[tuple[Status | None, str | None, bool], tuple[float, int]] = {}

    async def event_rows(self, *, watched_only: bool = True) -> list[EventRow]:
        query = EVENT_ROWS.order_by(events.c.name, events.c.event_id)
        if watched_only:
            query = query.where(events.c.batch_id.is_not(None))
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [event_from_row(row) for row in rows]

    async def event_rows_of(self, event_ids: Sequence[str]) -> dict[str, EventRow]:
        """The rows of those of `event_ids` ever watched, by ID."""
        if not event_ids:
            return {}
        async with self._reader.connect() as conn:
            rows = (await conn.execute(EVENT_ROWS.where(events.c.event_id.in_(event_ids)))).all()
        return {row.event_id: event_from_row(row) for row in rows}

    async def event_row(self, event_id: str) -> EventRow | None:
        async with self._reader.connect() as conn:
            row = (await conn.execute(EVENT_ROWS.where(events.c.event_id == event_id))).first()
        return None if row is None else event_from_row(row)

    async def snapshots_of(
        self, event_id: str, limit: int = 1000, since: float | None = None
    ) -> list[tuple[float, Availability]]:
        """The latest `limit` snapshots (from `since` on), oldest first."""
        query = (
            select(snapshots.c.observed_at, snapshots.c.status, snapshots.c.resale_status)
            .where(snapshots.c.event_id == event_id)
            .order_by(snapshots.c.observed_at.desc(), snapshots.c.id.desc())
            .limit(limit)
        )
        if since is not None:
            query = query.where(snapshots.c.observed_at >= since)
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(at, AVAILABILITY[s, r]) for at, s, r in reversed(rows)]

    async def changes_of(
        self, event_id: str | None = None, limit: int = 1000, since: float | None = None
    ) -> list[Change]:
        """The first `limit` changes from `since` on, or without it the latest `limit`;
        oldest first either way."""
        query = CHANGES_WITH_INFO.limit(limit)
        if event_id is not None:
            query = query.where(changes.c.event_id == event_id)
        if since is None:
            query = query.order_by(changes.c.observed_at.desc(), changes.c.id.desc())
        else:
            query = query.where(changes.c.observed_at >= since).order_by(
                changes.c.observed_at, changes.c.id
            )
        async with self._reader.connect() as conn:
            rows = [change_from_row(row) for row in (await conn.execute(query)).all()]
        return rows[::-1] if since is None else rows

    async def events_page(
        self,
        *,
        after: str | None = None,
        limit: int = 100,
        status: Status | None = None,
        search: str | None = None,
        with_paused: bool = False,
        by_date: bool = False,
    ) -> EventPage:
        """Watched events (`with_paused`: paused ones too) in event ID order, `limit` after
        the cursor `after`; `by_date`: the next show first, those without a date last, and
        no cursor."""
        watched: ColumnElement[bool] = events.c.batch_id.is_not(None)
        if with_paused:
            paused = select(watches.c.event_id).where(watches.c.paused.is_(True))
            watched = watched | events.c.event_id.in_(paused.scalar_subquery())
        conditions: list[ColumnElement[bool]] = [watched]
        if status is not None:
            conditions.append(events.c.status == status.value)
        if search:
            pattern = f"%{search.lower()}%"
            conditions.append(
                or_(
                    func.lower(events.c.event_id).like(pattern),
                    func.lower(events.c.name).like(pattern),
                )
            )
        order: tuple[ColumnElement[Any], ...] = (events.c.event_id,)
        if by_date:
            starts = event_details.c.starts_at
            order = (starts.is_(None), starts, events.c.name, events.c.event_id)
        page = EVENT_ROWS.where(*conditions).order_by(*order).limit(limit + 1)
        if after is not None:
            page = page.where(events.c.event_id > after)
        async with self._reader.connect() as conn:
            rows = [event_from_row(row) for row in (await conn.execute(page)).all()]
            key = (status, search, with_paused)
            counted_at, total = self._totals.get(key, (-TOTAL_TTL, 0))
            if time.monotonic() - counted_at >= TOTAL_TTL:
                count = select(func.count()).select_from(events).where(*conditions)
                total = int(await conn.scalar(count) or 0)
                if len(self._totals) > MAX_CACHED_TOTALS:
                    self._totals.clear()
                self._totals[key] = (time.monotonic(), total)
        more = len(rows) > limit
        rows = rows[:limit]
        return EventPage(rows, total, rows[-1].event_id if more and rows else None)

    async def changes_of_events(self, event_ids: Sequence[str], since: float) -> list[Change]:
        """Every change of `event_ids` after `since`, oldest first: the dashboard's timelines."""
        if not event_ids:
            return []
        query = (
            select(changes)
            .where(
                changes.c.event_id.in_(list(event_ids)),
                changes.c.observed_at > since,
                changes.c.kind == ChangeKind.INVENTORY.value,
            )
            .order_by(changes.c.observed_at, changes.c.id)
        )
        async with self._reader.connect() as conn:
            return [change_from_row(row) for row in (await conn.execute(query)).all()]

    async def every_change(
        self, since: float | None = None, event_id: str | None = None
    ) -> AsyncIterator[Change]:
        """Every availability change (from `since`, of `event_id`), oldest first, streamed."""
        query = (
            select(changes)
            .where(changes.c.kind == ChangeKind.INVENTORY.value)
            .order_by(changes.c.observed_at, changes.c.id)
        )
        if since is not None:
            query = query.where(changes.c.observed_at >= since)
        if event_id is not None:
            query = query.where(changes.c.event_id == event_id)
        async with self._reader.connect() as conn:
            async for row in await conn.stream(query):
                yield change_from_row(row)

    async def outbox_stats(self) -> OutboxStats:
        query = select(func.count(), func.min(deliveries.c.created_at)).where(
            deliveries.c.state == DeliveryState.PENDING
        )
        async with self._reader.connect() as conn:
            pending, oldest = (await conn.execute(query)).one()
        return OutboxStats(int(pending), oldest)

    async def troubled_deliveries(
        self, limit: int, *, notifiers_from: str | None = None
    ) -> list[Troubled]:
        """The latest deliveries that failed: dead ones, and pending ones being retried;
        with `notifiers_from`, those of the notifiers whose names start so alone (a user's
        channels: `@alice/`)."""
        query = (
            select(
                deliveries.c.id,
                changes.c.event_id,
                changes.c.event_name,
                deliveries.c.notifier,
                deliveries.c.state,
                deliveries.c.attempts,
                deliveries.c.next_attempt_at,
                deliveries.c.last_error,
            )
            .join(changes, changes.c.id == deliveries.c.change_id)
            .where(
                or_(
                    deliveries.c.state == DeliveryState.DEAD,
                    (deliveries.c.state == DeliveryState.PENDING) & (deliveries.c.attempts > 0),
                )
            )
            .order_by(deliveries.c.created_at.desc())
            .limit(limit)
        )
        if notifiers_from is not None:
            query = query.where(deliveries.c.notifier.startswith(notifiers_from, autoescape=True))
        async with self._reader.connect() as conn:
            return [Troubled(*row) for row in (await conn.execute(query)).all()]

    async def shortest_interval(self) -> float | None:
        """The shortest interval any batch is polled at now (after `fit_quota` stretched
        intervals and `interval_by_status` moved events); None before the first sync."""
        async with self._reader.connect() as conn:
            shortest = await conn.scalar(select(func.min(batches.c.interval_s)))
        return None if shortest is None else float(shortest)

    async def watched_count(self) -> int:
        query = select(func.count()).select_from(events).where(events.c.batch_id.is_not(None))
        async with self._reader.connect() as conn:
            return int(await conn.scalar(query) or 0)

    async def deliveries_of(self, change_ids: Sequence[str]) -> list[DeliveryFate]:
        """What became of the deliveries of `change_ids`: their notifier, state and end."""
        found: list[DeliveryFate] = []
        ids = list(change_ids)
        async with self._reader.connect() as conn:
            for start in range(0, len(ids), 5000):
                query = select(
                    deliveries.c.change_id,
                    deliveries.c.notifier,
                    deliveries.c.state,
                    deliveries.c.finished_at,
                ).where(deliveries.c.change_id.in_(ids[start : start + 5000]))
                found.extend(DeliveryFate(*row) for row in (await conn.execute(query)).all())
        return found
