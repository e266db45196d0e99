"""Event details from the Discovery API: which events are due a refresh, and what was
found. Every watched event has a row (see `Repository.sync_watchlist`); claims push its due
time out by a lease, so replicas sharing the database never fetch one event twice."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Select, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.discovery.details import EventDetails
from monitor.models import Availability, ResaleStatus, SaleOpening, Status
from monitor.sales import LONGEST_AFTER, burst_until, next_burst_opening, next_sale
from monitor.store.binds import change, delivery
from monitor.store.engine import reader
from monitor.store.records import PollWrite
from monitor.store.rows import availability
from monitor.store.tables import changes, deliveries, event_details, events


class ComingBurst(NamedTuple):
    event_id: str
    name: str | None
    starts_at: float
    ends_at: float


UNKNOWN = Availability(Status.UNKNOWN, ResaleStatus.UNKNOWN)
"""The availability of an event never read yet."""


class DetailsDue(NamedTuple):
    event_id: str
    link: str | None
    """The configured link: the only way to find a legacy ID in Discovery."""
    lifecycle: str | None = None
    """What Discovery said last time, to tell news from it."""
    availability: Availability = UNKNOWN
    """The event's availability now: news of another kind carries it."""


class Show(NamedTuple):
    """An event as a calendar shows it."""

    event_id: str
    name: str | None
    url: str | None
    starts_at: float | None
    venue: str | None
    sales: tuple[SaleOpening, ...]


class SalesDue(NamedTuple):
    """An event with a sale window opening by now."""

    event_id: str
    sales: tuple[SaleOpening, ...]
    seen_until: float | None
    availability: Availability


_FOUND = (
    update(event_details)
    .where(event_details.c.event_id == bindparam("b_id"))
    .values(
        found=True,
        name=bindparam("b_name"),
        url=bindparam("b_url"),
        starts_at=bindparam("b_starts_at"),
        local_date=bindparam("b_local_date"),
        timezone=bindparam("b_timezone"),
        venue_name=bindparam("b_venue_name"),
        venue_city=bindparam("b_venue_city"),
        venue_country=bindparam("b_venue_country"),
        lifecycle=bindparam("b_lifecycle"),
        sales=bindparam("b_sales"),
        price_low=bindparam("b_price_low"),
        price_high=bindparam("b_price_high"),
        price_currency=bindparam("b_price_currency"),
        fetched_at=bindparam("b_now"),
        next_fetch_at=bindparam("b_next"),
        next_sale_at=bindparam("b_next_sale"),
        burst_sale_at=bindparam("b_burst_sale"),
        failures=0,
    )
)

# What Discovery no longer knows keeps what it said before: sold-out events drop out of its
# results, and are watched all the same.
_MISSING = (
    update(event_details)
    .where(event_details.c.event_id == bindparam("b_id"))
    .values(next_fetch_at=bindparam("b_next"), failures=0)
)

_FAILED = (
    update(event_details)
    .where(event_details.c.event_id == bindparam("b_id"))
    .values(next_fetch_at=bindparam("b_next"), failures=event_details.c.failures + 1)
)


class Details:
    """Every job here runs every few seconds: each looks first with a read, and takes the
    write lock only when there is something to do."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)

    async def _any(self, query: Select[Any]) -> bool:
        async with self._reader.connect() as conn:
            return await conn.scalar(query.limit(1)) is not None

    async def claim(
        self, now: float, limit: int, lease_until: float, early: float = 0.0
    ) -> list[DetailsDue]:
        """When any watched event's details are due: up to `limit` events, soonest due
        first, taking along those due within `early` from now (one search serves many, so
        refreshes stay together), each due again at `lease_until` unless saved before."""
        watched = (
            select(
                event_details.c.event_id,
                events.c.link,
                event_details.c.lifecycle,
                events.c.status,
                events.c.resale_status,
            )
            .join(events, events.c.event_id == event_details.c.event_id)
            .where(events.c.batch_id.is_not(None))
        )
        if not await self._any(
            watched.with_only_columns(event_details.c.event_id).where(
                event_details.c.next_fetch_at <= now
            )
        ):
            return []
        async with self.engine.begin() as conn:
            taken = (
                watched.where(event_details.c.next_fetch_at <= now + early)
                .order_by(event_details.c.next_fetch_at)
                .limit(limit)
                .with_for_update(of=event_details, skip_locked=True)
            )
            rows = [
                DetailsDue(row.event_id, row.link, row.lifecycle, _availability(row))
                for row in await conn.execute(taken)
            ]
            if rows:
                await conn.execute(
                    update(event_details)
                    .where(event_details.c.event_id.in_([row.event_id for row in rows]))
                    .values(next_fetch_at=lease_until)
                )
        return rows

    async def save(
        self,
        found: Sequence[EventDetails],
        missing: Sequence[str],
        now: float,
        next_fetch: Mapping[str, float],
        news: PollWrite | None = None,
    ) -> None:
        """What Discovery said, when to ask again about each event, and the changes it
        brought with their deliveries, all at once."""
        async with self.engine.begin() as conn:
            if found:
                await conn.execute(_FOUND, [_found(d, now, next_fetch[d.id]) for d in found])
                await _first_look(conn, [d.id for d in found], now)
            if missing:
                await conn.execute(
                    _MISSING, [{"b_id": i, "b_next": next_fetch[i]} for i in missing]
                )
            if news is not None:
                await _news(conn, news)

    async def venue_countries(self, countries: Sequence[str]) -> dict[str, str]:
        """Where Discovery says events are held, for those held in `countries`."""
        query = select(event_details.c.event_id, event_details.c.venue_country).where(
            event_details.c.venue_country.in_(countries)
        )
        async with self._reader.connect() as conn:
            return {row.event_id: row.venue_country for row in (await conn.execute(query)).all()}

    async def found_by_search(
        self, found: Sequence[EventDetails], now: float, next_fetch_at: float
    ) -> None:
        """What a search's answer said of events it adds: the same as a details fetch
        would, so their first changes carry their date and venue, and no fetch is spent."""
        if not found:
            return
        async with self.engine.begin() as conn:
            known = set(
                await conn.scalars(
                    select(event_details.c.event_id).where(
                        event_details.c.event_id.in_([d.id for d in found])
                    )
                )
            )
            fresh = [d.id for d in found if d.id not in known]
            if fresh:
                await conn.execute(
                    insert(event_details),
                    [
                        {"event_id": i, "found": False, "next_fetch_at": now, "failures": 0}
                        for i in fresh
                    ],
                )
            await conn.execute(_FOUND, [_found(d, now, next_fetch_at) for d in found])
            await _first_look(conn, [d.id for d in found], now)

    async def bursts(self, now: float, before: float, after: float) -> dict[str, float]:
        """The watched events in a burst around a sale opening at `now`, with when each
        burst ends; events whose bursts are over look to their next opening."""
        near = (
            select(event_details.c.event_id, event_details.c.sales, event_details.c.burst_sale_at)
            .join(events, events.c.event_id == event_details.c.event_id)
            .where(event_details.c.burst_sale_at <= now + before, events.c.batch_id.is_not(None))
        )
        bursting: dict[str, float] = {}
        moved: list[dict[str, object]] = []
        async with self._reader.connect() as conn:
            rows = (await conn.execute(near)).all()
        for row in rows:
            openings = [sale.starts_at for sale in _sales(row.sales)]
            until = burst_until(openings, now, before, after)
            if until is not None:
                bursting[row.event_id] = until
            following = next_burst_opening(openings, now, after)
            if following != row.burst_sale_at:
                moved.append({"b_id": row.event_id, "b_next": following})
        if moved:
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(event_details)
                    .where(event_details.c.event_id == bindparam("b_id"))
                    .values(burst_sale_at=bindparam("b_next")),
                    moved,
                )
        return bursting

    async def coming_bursts(
        self, now: float, horizon: float, before: float, after: float
    ) -> list[ComingBurst]:
        """The bursts of watched events that start (or go on) within `horizon` of `now`,
        soonest first."""
        near = (
            select(event_details.c.event_id, event_details.c.sales, events.c.name)
            .join(events, events.c.event_id == event_details.c.event_id)
            .where(
                event_details.c.burst_sale_at <= now + horizon + before,
                events.c.batch_id.is_not(None),
            )
        )
        async with self._reader.connect() as conn:
            rows = (await conn.execute(near)).all()
        coming = [
            ComingBurst(row.event_id, row.name, sale.starts_at - before, sale.starts_at + after)
            for row in rows
            for sale in _sales(row.sales)
            if sale.starts_at + after > now and sale.starts_at - before <= now + horizon
        ]
        return sorted(coming, key=lambda burst: (burst.starts_at, burst.event_id))

    async def shows(self, event_ids: Sequence[str]) -> list[Show]:
        """What a calendar needs of each of `event_ids` that Discovery knows: its name, start,
        venue, page and sale openings."""
        query = (
            select(
                event_details.c.event_id,
                func.coalesce(events.c.name, event_details.c.name).label("name"),
                func.coalesce(events.c.link, event_details.c.url).label("url"),
                event_details.c.starts_at,
                event_details.c.venue_name,
                event_details.c.venue_city,
                event_details.c.sales,
            )
            .join(events, events.c.event_id == event_details.c.event_id, isouter=True)
            .where(event_details.c.event_id.in_(event_ids), event_details.c.found.is_(True))
            .order_by(event_details.c.starts_at, event_details.c.event_id)
        )
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Show(
                row.event_id,
                row.name,
                row.url,
                row.starts_at,
                ", ".join(part for part in (row.venue_name, row.venue_city) if part) or None,
                _sales(row.sales),
            )
            for row in rows
        ]

    async def announce_sales(
        self, now: float, decide: Callable[[Sequence[SalesDue]], PollWrite]
    ) -> int:
        """The events with a sale window opening by `now`, through `decide`, whose changes
        and deliveries are written with the news marked seen: each opening is announced
        once, by one replica. Returns how many changes were written."""
        due = (
            select(
                event_details.c.event_id,
                event_details.c.sales,
                event_details.c.sales_seen_until,
                events.c.status,
                events.c.resale_status,
            )
            .join(events, events.c.event_id == event_details.c.event_id)
            .where(event_details.c.next_sale_at <= now, events.c.batch_id.is_not(None))
        )
        if not await self._any(due.with_only_columns(event_details.c.event_id)):
            return 0
        async with self.engine.begin() as conn:
            due = due.with_for_update(of=event_details, skip_locked=True)
            rows = [
                SalesDue(row.event_id, _sales(row.sales), row.sales_seen_until, _availability(row))
                for row in await conn.execute(due)
            ]
            if not rows:
                return 0
            write = decide(rows)
            await _news(conn, write)
            await conn.execute(
                update(event_details)
                .where(event_details.c.event_id == bindparam("b_id"))
                .values(sales_seen_until=now, next_sale_at=bindparam("b_next")),
                [{"b_id": row.event_id, "b_next": next_sale(row.sales, now)} for row in rows],
            )
        return len(write.changes)

    async def failed(self, event_ids: Sequence[str], retry_at: float) -> None:
        if event_ids:
            async with self.engine.begin() as conn:
                await conn.execute(_FAILED, [{"b_id": i, "b_next": retry_at} for i in event_ids])


async def _news(conn: AsyncConnection, write: PollWrite) -> None:
    if write.changes:
        await conn.execute(insert(changes), [change(c) for c in write.changes])
    if write.deliveries:
        await conn.execute(insert(deliveries), [delivery(d) for d in write.deliveries])


def _availability(row: Any) -> Availability:
    return availability(row.status, row.resale_status) or UNKNOWN


def _sales(text: str | None) -> tuple[SaleOpening, ...]:
    return tuple(
        SaleOpening(sale["kind"], sale.get("name"), sale["starts_at"])
        for sale in (orjson.loads(text) if text else ())
    )


async def _first_look(conn: AsyncConnection, event_ids: Sequence[str], now: float) -> None:
    """A first look sees sales as they stand; only later openings are news."""
    await conn.execute(
        update(event_details)
        .where(
            event_details.c.event_id.in_(event_ids),
            event_details.c.sales_seen_until.is_(None),
        )
        .values(sales_seen_until=now)
    )


def _found(details: EventDetails, now: float, next_fetch: float) -> dict[str, object]:
    price = details.price
    openings = [SaleOpening(s.kind, s.name, s.starts_at) for s in details.sales if s.starts_at]
    return {
        "b_id": details.id,
        "b_name": details.name,
        "b_url": details.url,
        "b_starts_at": details.starts_at,
        "b_local_date": details.local_date,
        "b_timezone": details.timezone,
        "b_venue_name": details.venue.name,
        "b_venue_city": details.venue.city,
        "b_venue_country": details.venue.country,
        "b_lifecycle": details.lifecycle,
        "b_sales": orjson.dumps(
            [
                {"kind": s.kind, "name": s.name, "starts_at": s.starts_at, "ends_at": s.ends_at}
                for s in details.sales
            ]
        ).decode(),
        "b_price_low": price and price.low,
        "b_price_high": price and price.high,
        "b_price_currency": price and price.currency,
        "b_now": now,
        "b_next": next_fetch,
        "b_next_sale": next_sale(openings, now),
        "b_burst_sale": next_burst_opening([o.starts_at for o in openings], now, LONGEST_AFTER),
    }
