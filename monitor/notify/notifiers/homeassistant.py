"""What Home Assistant's MQTT discovery is told: a device per event (its ticket status,
resale status and whether tickets are on sale) and one for the watcher itself, every ID
carrying the notifier's instance; and the retained payloads those entities read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitor.markets import event_link
from monitor.models import DaemonHealth, EventStatus, Health, ResaleStatus, Status
from monitor.times import iso

_AVAILABLE = (Status.TICKETS_AVAILABLE.value, Status.FEW_TICKETS_LEFT.value)


def event_topic(prefix: str, event_id: str, leaf: str) -> str:
    return f"{prefix}/events/{event_id}/{leaf}"


@dataclass(frozen=True)
class HomeAssistant:
    prefix: str
    """The notifier's `topic_prefix`, without a trailing slash."""
    instance: str
    discovery_prefix: str

    @property
    def status_topic(self) -> str:
        return f"{self.prefix}/status"

    def event(self, status: EventStatus) -> list[tuple[str, dict[str, Any]]]:
        """Home Assistant MQTT discovery: two sensors and a binary sensor per event, grouped
        under one device; every ID carries the instance."""
        object_id = f"{self.instance}_{status.event_id.replace('.', '_')}"
        node = f"inventory_monitor_{object_id}"
        common = {
            "state_topic": event_topic(self.prefix, status.event_id, "state"),
            "json_attributes_topic": event_topic(self.prefix, status.event_id, "attributes"),
            "availability_topic": self.status_topic,
            "device": {
                "identifiers": [node],
                "name": status.name or status.event_id,
                "manufacturer": "inventory-monitor",
                "configuration_url": link_of(status),
            },
        }
        entities: list[tuple[str, str, dict[str, Any]]] = [
            (
                "sensor",
                "status",
                {
                    "name": "Tickets",
                    "value_template": "{{ value_json.status }}",
                    "device_class": "enum",
                    "options": [s.value for s in Status],
                    "icon": "mdi:ticket",
                },
            ),
            (
                "sensor",
                "resale_status",
                {
                    "name": "Resale",
                    "value_template": "{{ value_json.resale_status }}",
                    "device_class": "enum",
                    "options": [s.value for s in ResaleStatus],
                    "icon": "mdi:ticket-account",
                },
            ),
            (
                "binary_sensor",
                "tickets_available",
                {
                    "name": "Tickets available",
                    "value_template": (
                        f"{{{{ 'ON' if value_json.status in {list(_AVAILABLE)!r} else 'OFF' }}}}"
                    ),
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "icon": "mdi:ticket-confirmation",
                },
            ),
        ]
        return self._configs(node, object_id, common, entities)

    def daemon(self) -> list[tuple[str, dict[str, Any]]]:
        """The daemon's own device: when it last polled, whether the upstream has a
        problem, and what is left of the quota."""
        object_id = f"{self.instance}_daemon"
        node = f"inventory_monitor_{object_id}"
        common = {
            "state_topic": f"{self.prefix}/daemon/state",
            "availability_topic": self.status_topic,
            "device": {
                "identifiers": [node],
                "name": f"inventory-monitor ({self.instance})",
                "manufacturer": "inventory-monitor",
            },
        }
        entities: list[tuple[str, str, dict[str, Any]]] = [
            (
                "sensor",
                "last_poll",
                {
                    "name": "Last poll",
                    "device_class": "timestamp",
                    "value_template": "{{ value_json.last_poll }}",
                },
            ),
            (
                "binary_sensor",
                "upstream",
                {
                    "name": "Ticketmaster API",
                    "device_class": "problem",
                    "value_template": "{{ 'ON' if value_json.problem else 'OFF' }}",
                    "payload_on": "ON",
                    "payload_off": "OFF",
                },
            ),
            (
                "sensor",
                "quota_left",
                {
                    "name": "Quota left",
                    "state_class": "measurement",
                    "unit_of_measurement": "requests",
                    "value_template": "{{ value_json.quota_left }}",
                    "icon": "mdi:counter",
                },
            ),
        ]
        return self._configs(node, object_id, common, entities)

    def _configs(
        self,
        node: str,
        object_id: str,
        common: dict[str, Any],
        entities: list[tuple[str, str, dict[str, Any]]],
    ) -> list[tuple[str, dict[str, Any]]]:
        base = self.discovery_prefix
        return [
            (
                f"{base}/{component}/{node}/{key}/config",
                {
                    **common,
                    **entity,
                    "unique_id": f"{node}_{key}",
                    "object_id": f"{object_id}_{key}",
                },
            )
            for component, key, entity in entities
        ]


def state_of(status: EventStatus) -> dict[str, Any]:
    current = status.current
    return {
        "status": None if current is None else current.status.value,
        "resale_status": None if current is None else current.resale_status.value,
        "changed_at": None if status.changed_at is None else iso(status.changed_at),
        "name": status.name,
        "url": link_of(status),
    }


def link_of(status: EventStatus) -> str:
    """The event's page: Discovery's (on its market's site), else one made from its ID."""
    info = status.info
    if info is not None and info.url:
        return info.url
    return event_link(status.event_id, None)


def attributes_of(status: EventStatus) -> dict[str, Any]:
    info = status.info
    venue = None if info is None else info.venue
    return {
        "url": link_of(status),
        "starts_at": None if info is None or info.starts_at is None else iso(info.starts_at),
        "venue": None
        if venue is None
        else ", ".join(p for p in (venue.name, venue.city) if p) or None,
        "lifecycle": None if info is None else info.lifecycle,
        "watching": status.watching,
    }


def health_of(health: DaemonHealth) -> dict[str, Any]:
    return {
        "last_poll": None if health.last_poll_at is None else iso(health.last_poll_at),
        "health": health.health.value,
        "problem": health.health is not Health.OK,
        "quota_left": health.quota_left,
    }
