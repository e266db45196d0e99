"""The simulator's Discovery API: a catalog of events in Discovery's own shape, searched
with its filters, paged with its limits."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.config import EventConfig
from monitor.markets import IdKind, slug_words
from monitor.upstream.quota import MAX_DEPTH

MAX_SIZE = 200


def discovery_event(
    event_id: str,
    name: str,
    *,
    starts_at: datetime,
    venue: str = "Arena",
    city: str = "London",
    country: str = "GB",
    timezone: str = "Europe/London",
    lifecycle: str = "onsale",
    url: str | None = None,
    attraction: tuple[str, str] | None = None,
    segment: str = "Music",
    public_sale: tuple[datetime, datetime] | None = None,
    presales: tuple[tuple[str, datetime, datetime], ...] = (),
    price: tuple[float, float, str] | None = None,
) -> dict[str, Any]:
    """An event document as Discovery writes one, with the fields the monitor reads."""
    doc: dict[str, Any] = {
        "name": name,
        "type": "event",
        "id": event_id,
        "url": url or f"https://www.ticketmaster.com/event/{event_id}",
        "dates": {
            "start": {
                "localDate": starts_at.date().isoformat(),
                "dateTime": _stamp(starts_at),
            },
            "timezone": timezone,
            "status": {"code": lifecycle},
        },
        "classifications": [{"primary": True, "segment": {"name": segment}}],
        "_embedded": {
            "venues": [
                {
                    "name": venue,
                    "id": f"V-{venue.replace(' ', '')}",
                    "city": {"name": city},
                    "country": {"countryCode": country},
                    "timezone": timezone,
                }
            ],
            "attractions": [{"id": attraction[0], "name": attraction[1]}] if attraction else [],
        },
        "sales": {},
    }
    if public_sale is not None:
        doc["sales"]["public"] = {
            "startDateTime": _stamp(public_sale[0]),
            "endDateTime": _stamp(public_sale[1]),
        }
    if presales:
        doc["sales"]["presales"] = [
            {"name": n, "startDateTime": _stamp(s), "endDateTime": _stamp(e)}
            for n, s, e in presales
        ]
    if price is not None:
        doc["priceRanges"] = [
            {"type": "standard", "currency": price[2], "min": price[0], "max": price[1]}
        ]
    return doc


_VENUES = {
    "GB": ("Wembley Stadium", "London", "Europe/London"),
    "IE": ("Croke Park", "Dublin", "Europe/Dublin"),
    None: ("Madison Square Garden", "New York", "America/New_York"),
}


def demo_events(events: Sequence[EventConfig], now: datetime) -> list[dict[str, Any]]:
    """What the demo's Discovery API knows: of the watched events, a venue in each event's
    market, a show every week, and for the first event a presale opening a minute in, so
    the demo shows a sale opening too; and two shows for the demo's search to find."""
    docs = []
    for index, event in enumerate(events):
        venue, city, zone = _VENUES.get(event.region, _VENUES[None])
        show = (now + timedelta(days=7 * (index + 1))).replace(hour=19, minute=30, second=0)
        opens = now + timedelta(minutes=1)
        legacy = event.kind is IdKind.LEGACY
        # Discovery names an event as its link's words do: that is how a legacy ID is found.
        linked = slug_words(event.url)
        presales = (("Fan presale", opens, opens + timedelta(hours=1)),) if index == 0 else ()
        docs.append(
            discovery_event(
                f"DEMO{index}" if legacy else event.id,
                linked.title() if linked else event.name or event.id,
                starts_at=show,
                venue=venue,
                city=city,
                country=event.region or "US",
                timezone=zone,
                url=event.url.split("?")[0] if event.url else None,
                public_sale=(opens + timedelta(hours=1), show),
                presales=presales,
                price=(45.0, 180.0, "GBP" if event.region in ("GB", "IE") else "USD"),
            )
        )
    # Shows nobody listed: for the demo's `discover:` search to find, and for an artist to
    # follow (`watch follow "Fontaines D.C."`).
    for index, city in enumerate(("Sheffield", "Manchester")):
        docs.append(
            discovery_event(
                f"AM{index + 1}DEMO",
                f"Arctic Monkeys — {city}",
                starts_at=(now + timedelta(days=20 + 3 * index)).replace(hour=20, minute=0),
                venue=f"{city} Arena",
                city=city,
                attraction=("K8vZ91713wV", "Arctic Monkeys"),
            )
        )
    for index, (city, venue) in enumerate((("Dublin", "3Arena"), ("Glasgow", "Hydro"))):
        docs.append(
            discovery_event(
                f"FDC{index + 1}DEMO",
                f"Fontaines D.C. — {city}",
                starts_at=(now + timedelta(days=30 + 4 * index)).replace(hour=20, minute=0),
                venue=venue,
                city=city,
                country="IE" if city == "Dublin" else "GB",
                attraction=("K8vZ917FDC0", "Fontaines D.C."),
            )
        )
    return docs


class Catalog:
    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}

    def add(self, doc: dict[str, Any]) -> None:
        self.events[str(doc["id"])] = doc

    def search(self, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """The answer (HTTP status, body) to a search with `query`'s parameters."""
        try:
            size = int(query.get("size", "20"))
            page = int(query.get("page", "0"))
        except ValueError:
            return 400, _fault("size and page must be whole numbers")
        if not 0 < size <= MAX_SIZE or page < 0:
            return 400, _fault(f"size must be 1 to {MAX_SIZE} and page at least 0")
        if size * page >= MAX_DEPTH:
            return 400, _fault(
                f"Result window is too large, size * page must be less than {MAX_DEPTH}"
            )
        hits = sorted(
            (doc for doc in self.events.values() if _matches(doc, query)),
            key=lambda doc: doc["dates"]["start"].get("dateTime") or "",
        )
        shown = hits[page * size : (page + 1) * size]
        body: dict[str, Any] = {
            "page": {
                "size": size,
                "totalElements": len(hits),
                "totalPages": -(-len(hits) // size),
                "number": page,
            }
        }
        if shown:
            body["_embedded"] = {"events": shown}
        return 200, body

    def attractions(self, query: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """The attractions of the catalog's events whose names hold every word of
        `keyword`, as Discovery's attraction search answers."""
        words = query.get("keyword", "").lower().split()
        found: dict[str, dict[str, Any]] = {}
        for doc in self.events.values():
            for attraction in doc["_embedded"].get("attractions", []):
                if all(word in attraction["name"].lower() for word in words):
                    found.setdefault(attraction["id"], {**attraction, "type": "attraction"})
        shown = list(found.values())[: int(query.get("size", "20") or 20)]
        body: dict[str, Any] = {"page": {"size": len(shown), "totalElements": len(found)}}
        if shown:
            body["_embedded"] = {"attractions": shown}
        return 200, body

    def event(self, event_id: str) -> tuple[int, dict[str, Any]]:
        doc = self.events.get(event_id)
        if doc is None:
            return 404, _fault(f"Resource not found with provided criteria (id={event_id})")
        return 200, doc


def _matches(doc: dict[str, Any], query: Mapping[str, str]) -> bool:
    venue = doc["_embedded"]["venues"][0]
    attractions = doc["_embedded"].get("attractions", [])
    start = doc["dates"]["start"].get("dateTime") or ""
    checks: dict[str, Callable[[str], bool]] = {
        "keyword": lambda v: all(
            word in " ".join([doc["name"], *(a["name"] for a in attractions)]).lower()
            for word in v.lower().split()
        ),
        "attractionId": lambda v: any(a["id"] == v for a in attractions),
        "venueId": lambda v: venue["id"] == v,
        "countryCode": lambda v: venue["country"]["countryCode"] == v.upper(),
        "city": lambda v: venue["city"]["name"].lower() == v.lower(),
        "classificationName": lambda v: any(
            c["segment"]["name"].lower() == v.lower() for c in doc["classifications"]
        ),
        "startDateTime": lambda v: start >= v,
        "endDateTime": lambda v: start <= v,
        "id": lambda v: doc["id"] in v.split(","),
    }
    return all(check(query[key]) for key, check in checks.items() if query.get(key))


def _fault(message: str) -> dict[str, Any]:
    return {"fault": {"faultstring": message, "detail": {"errorcode": "discovery.BadRequest"}}}


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
