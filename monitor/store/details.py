"""Event details from the Discovery API: which events are due a refresh, and what was
found. Every watched event has a row (see `Repository.sync_watchlist`); claims push its due
time out by a lease, so replicas sharing the database never fetch one event twice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import orjson
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.discovery.details import EventDetails
from monitor.store.tables import event_details, events


class DetailsDue(NamedTuple):
    event_id: str
    link: str | None
    """The configured link: the only way to find a legacy ID in Discovery."""


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
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def claim(
        self, now: float, limit: int, lease_until: float, early: float = 0.0
    ) -> list[DetailsDue]:
        """When any watched event's details are due: up to `limit` events, soonest due
        first, taking along those due within `early` from now (one search serves many, so
        refreshes stay together), each due again at `lease_until` unless saved before."""
        watched = (
            select(event_details.c.event_id, events.c.link)
            .join(events, events.c.event_id == event_details.c.event_id)
            .where(events.c.batch_id.is_not(None))
        )
        async with self.engine.begin() as conn:
            due = await conn.scalar(
                watched.with_only_columns(event_details.c.event_id)
                .where(event_details.c.next_fetch_at <= now)
                .limit(1)
            )
            if due is None:
                return []
            taken = (
                watched.where(event_details.c.next_fetch_at <= now + early)
                .order_by(event_details.c.next_fetch_at)
                .limit(limit)
                .with_for_update(of=event_details, skip_locked=True)
            )
            rows = [DetailsDue(row.event_id, row.link) for row in await conn.execute(taken)]
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
    ) -> None:
        """What Discovery said, and when to ask again about each event."""
        async with self.engine.begin() as conn:
            if found:
                await conn.execute(_FOUND, [_found(d, now, next_fetch[d.id]) for d in found])
            if missing:
                await conn.execute(
                    _MISSING, [{"b_id": i, "b_next": next_fetch[i]} for i in missing]
                )

    async def failed(self, event_ids: Sequence[str], retry_at: float) -> None:
        if event_ids:
            async with self.engine.begin() as conn:
                await conn.execute(_FAILED, [{"b_id": i, "b_next": retry_at} for i in event_ids])


def _found(details: EventDetails, now: float, next_fetch: float) -> dict[str, object]:
    price = details.price
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
    }
