"""An event as the Discovery API describes it, read from its JSON leniently.

Discovery answers are large and loosely kept: any field may be missing, and a few events
in every search lack whole sections. A field that is missing or of the wrong type reads
as None; only an event without an `id` is refused (`ShapeError`), since nothing can be
known about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.errors import UpstreamError
from monitor.models import Venue

LIFECYCLES = ("onsale", "offsale", "canceled", "postponed", "rescheduled")


class ShapeError(UpstreamError):
    """A Discovery answer that is not the documented shape."""


@dataclass(frozen=True, slots=True)
class Sale:
    kind: str
    """"public" or "presale"."""
    name: str | None
    starts_at: float | None
    ends_at: float | None


@dataclass(frozen=True, slots=True)
class Attraction:
    """An artist, a team or an act, as Discovery knows it."""

    id: str
    name: str | None


@dataclass(frozen=True, slots=True)
class PriceRange:
    low: float | None
    high: float | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class EventDetails:
    id: str
    name: str | None = None
    url: str | None = None
    starts_at: float | None = None
    """The start as epoch seconds; None when Discovery gives only a date or nothing."""
    local_date: str | None = None
    """The start date in the venue's time zone (YYYY-MM-DD), for events without a time."""
    timezone: str | None = None
    venue: Venue = field(default_factory=Venue)
    lifecycle: str | None = None
    """`dates.status.code`: onsale, offsale, canceled, postponed or rescheduled."""
    sales: tuple[Sale, ...] = ()
    price: PriceRange | None = None
    venue_id: str | None = None
    """The venue's Discovery ID: what a search by venue takes."""
    attractions: tuple[Attraction, ...] = ()
    """The artists, teams or acts: what a search by attraction takes."""


def parse_event(doc: object) -> EventDetails:
    """One event document of a search or of an event lookup."""
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not doc["id"]:
        raise ShapeError("a Discovery event without an id")
    dates = _dict(doc.get("dates"))
    start = _dict(dates.get("start"))
    lifecycle = _str(_dict(dates.get("status")).get("code"))
    return EventDetails(
        id=doc["id"],
        name=_str(doc.get("name")),
        url=_str(doc.get("url")),
        starts_at=_time(start.get("dateTime")),
        local_date=_str(start.get("localDate")),
        timezone=_str(dates.get("timezone")),
        venue=_venue(doc),
        lifecycle=lifecycle if lifecycle in LIFECYCLES else None,
        sales=_sales(_dict(doc.get("sales"))),
        price=_price(doc.get("priceRanges")),
        venue_id=_venue_id(doc),
        attractions=_attractions(doc),
    )


def parse_attraction(doc: object) -> Attraction | None:
    """One attraction document; None without an id."""
    item = _dict(doc)
    found = _str(item.get("id"))
    return None if found is None else Attraction(found, _str(item.get("name")))


def _venue_id(doc: dict[str, Any]) -> str | None:
    venues = _dict(doc.get("_embedded")).get("venues")
    if not isinstance(venues, list) or not venues:
        return None
    return _str(_dict(venues[0]).get("id"))


def _attractions(doc: dict[str, Any]) -> tuple[Attraction, ...]:
    items = _dict(doc.get("_embedded")).get("attractions")
    found = (parse_attraction(item) for item in (items if isinstance(items, list) else ()))
    return tuple(item for item in found if item is not None)


def _venue(doc: dict[str, Any]) -> Venue:
    venues = _dict(doc.get("_embedded")).get("venues")
    if not isinstance(venues, list) or not venues:
        return Venue()
    first = _dict(venues[0])
    return Venue(
        name=_str(first.get("name")),
        city=_str(_dict(first.get("city")).get("name")),
        country=_str(_dict(first.get("country")).get("countryCode")),
    )


def _sales(sales: dict[str, Any]) -> tuple[Sale, ...]:
    found = []
    public = _dict(sales.get("public"))
    if public:
        found.append(
            Sale(
                "public", None, _time(public.get("startDateTime")), _time(public.get("endDateTime"))
            )
        )
    presales = sales.get("presales")
    for presale in presales if isinstance(presales, list) else ():
        each = _dict(presale)
        found.append(
            Sale(
                "presale",
                _str(each.get("name")),
                _time(each.get("startDateTime")),
                _time(each.get("endDateTime")),
            )
        )
    return tuple(sale for sale in found if sale.starts_at is not None)


def _price(ranges: object) -> PriceRange | None:
    if not isinstance(ranges, list):
        return None
    lows = [_number(_dict(r).get("min")) for r in ranges]
    highs = [_number(_dict(r).get("max")) for r in ranges]
    currencies = {_str(_dict(r).get("currency")) for r in ranges} - {None}
    low = min((n for n in lows if n is not None), default=None)
    high = max((n for n in highs if n is not None), default=None)
    if low is None and high is None:
        return None
    return PriceRange(low, high, currencies.pop() if len(currencies) == 1 else None)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _time(value: object) -> float | None:
    """An ISO 8601 date-time as epoch seconds; Discovery writes them in UTC with a Z."""
    text = _str(value)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None
