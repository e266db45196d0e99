"""How a change is written in machine formats: the webhook contract, which the JSON API
and MQTT share."""

from __future__ import annotations

from typing import Any

from monitor.models import Change
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
