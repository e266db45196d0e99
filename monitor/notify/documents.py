"""How a change is written in machine formats: the webhook contract, which the JSON API
and MQTT share."""

from __future__ import annotations

from typing import Any

from monitor.markets import event_link
from monitor.models import Change, EventInfo
from monitor.times import iso


def change_document(change: Change) -> dict[str, Any]:
    """The `data` object of the webhook contract; the JSON API serves the same document."""
    previous = change.previous
    return {
        "change_id": change.id,
        "event_id": change.event_id,
        "event_name": change.event_name,
        "previous": None
        if previous is None
        else {"status": previous.status.value, "resale_status": previous.resale_status.value},
        "current": {
            "status": change.current.status.value,
            "resale_status": change.current.resale_status.value,
        },
        "changed": list(change.changed),
        "observed_at": iso(change.observed_at),
        "event": event_document(change),
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
        "type": "inventory.test" if test else "inventory.changed",
        "timestamp": iso(change.observed_at),
        "data": {**data, "test": True} if test else data,
    }


def is_test(change: Change) -> bool:
    """Messages sent by `notify test` carry change ids that start with `test_`."""
    return change.id.startswith("test_")
