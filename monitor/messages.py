"""How a change reads to a person, and how it is written in machine formats."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitor.models import Change


def iso(timestamp: float) -> str:
    """RFC 3339 UTC with a Z, to the second: `2026-11-27T10:00:00Z`."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(change: Change) -> str:
    """`Eras Tour — Night 1 (vvG1zZ9pCY3Sp3): status TICKETS_AVAILABLE → FEW_TICKETS_LEFT`."""
    title = f"{change.event_name} ({change.event_id})" if change.event_name else change.event_id
    current = change.current
    previous = change.previous
    if previous is None:
        return f"{title}: first seen with status {current.status}, resale {current.resale_status}"
    parts = []
    if previous.status != current.status:
        parts.append(f"status {previous.status} → {current.status}")
    if previous.resale_status != current.resale_status:
        parts.append(f"resale {previous.resale_status} → {current.resale_status}")
    return f"{title}: {'; '.join(parts)}"


def change_document(change: Change) -> dict[str, Any]:
    """The `data` object of the webhook contract, also used by the JSON API."""
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
