"""The simulator's Discovery API: a catalog of events in Discovery's own shape, searched
with its filters, paged with its limits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

MAX_SIZE = 200
MAX_DEPTH = 1000


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
