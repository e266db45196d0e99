"""How a change is written in machine formats: the webhook contract, which the JSON API
and MQTT share."""

from __future__ import annotations

import uuid
from typing import Any

from monitor.markets import event_link
from monitor.models import (
    Availability,
    Change,
    ChangeKind,
    Delivery,
    EventInfo,
    ResaleStatus,
    Status,
)
from monitor.times import iso

MESSAGE_TYPES = {
    ChangeKind.INVENTORY: "inventory.changed",
    ChangeKind.LIFECYCLE: "event.lifecycle_changed",
    ChangeKind.SALE_OPENED: "event.sale_opened",
}


def change_document(change: Change) -> dict[str, Any]:
    """The `data` object of the webhook contract; the JSON API serves the same document.
    An availability change has `previous` and `current` availability; a lifecycle change
    `previous` and `current` lifecycle codes; a sale opening `sale`."""
    return {
        "change_id": change.id,
        "event_id": change.event_id,
        "event_name": change.known_name,
        "kind": change.kind.value,
        **_what_changed(change),
        "changed": list(change.changed),
        "observed_at": iso(change.observed_at),
        "event": event_document(change),
    }


def _what_changed(change: Change) -> dict[str, Any]:
    if change.lifecycle is not None:
        before, after = change.lifecycle
        return {"previous": {"lifecycle": before}, "current": {"lifecycle": after}}
    if change.sale is not None:
        sale = change.sale
        return {"sale": {"kind": sale.kind, "name": sale.name, "starts_at": iso(sale.starts_at)}}
    previous = change.previous
    return {
        "previous": None
        if previous is None
        else {"status": previous.status.value, "resale_status": previous.resale_status.value},
        "current": {
            "status": change.current.status.value,
            "resale_status": change.current.resale_status.value,
        },
    }


def event_info(change: Change) -> EventInfo:
    """The change's event details; for a change not read back with them, what it carries."""
    if change.event is not None:
        return change.event
    return EventInfo(name=change.event_name, url=event_link(change.event_id, None))


def event_document(change: Change) -> dict[str, Any]:
    """The `event` object of the webhook contract: every field present, null when unknown."""
    info = event_info(change)
    venue = info.venue
    return {
        "id": change.event_id,
        "name": info.name,
        "starts_at": None if info.starts_at is None else iso(info.starts_at),
        "timezone": info.timezone,
        "venue": {"name": venue.name, "city": venue.city, "country": venue.country},
        "url": info.url,
        "lifecycle": info.lifecycle,
    }


def change_message(change: Change) -> dict[str, Any]:
    """One change as a message of its own: the webhook's body, and MQTT's. A test message
    says so twice, in its `type` and in `data.test`, so no receiver acts on it."""
    test = is_test(change)
    data = change_document(change)
    return {
        "type": "inventory.test" if test else MESSAGE_TYPES[change.kind],
        "timestamp": iso(change.observed_at),
        "data": {**data, "test": True} if test else data,
    }


def is_test(change: Change) -> bool:
    """Messages sent by `notify test` carry change ids that start with `test_`."""
    return change.id.startswith("test_")


def test_delivery(notifier: str, now: float) -> Delivery:
    """A clearly marked test message: a realistic sample, so that a receiver can test its
    parsing, whose IDs (`test_...`) and `data.test` say it is no real change."""
    change = Change(
        id=f"test_{uuid.uuid4().hex}",
        event_id="vvG1zZ9pCY3Sp3",
        event_name="Sample show (a test message from inventory-monitor, not a real change)",
        previous=Availability(Status.TICKETS_NOT_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE),
        current=Availability(Status.TICKETS_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE),
        observed_at=now,
    )
    return Delivery(f"test_{uuid.uuid4().hex}", notifier, change, 1, now)
