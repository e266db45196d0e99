"""The `mqtt` notifier: every change as a message, every watched event's state retained, and
optionally Home Assistant discovery, so each show appears as entities.

Topics, under `topic_prefix`:
- `events/{id}/changes`: each change (of every kind), the webhook's JSON body, at `qos`,
  not retained;
- `events/{id}/state`: `{"status", "resale_status", "changed_at", "name", "url"}`,
  retained, once the event has been read (never a state of nulls);
- `events/{id}/attributes`: `{"url", "starts_at", "venue", "lifecycle", "watching"}`,
  retained: what Home Assistant shows as the entities' attributes;
- `daemon/state`: `{"last_poll", "health", "problem", "quota_left"}`, retained;
- `notices`: messages about the watcher itself (it stopped working, it found new shows);
- `status`: `online`, retained, and `offline` as the broker's last will;
- `test`: what `notify test` publishes.

Home Assistant's entities carry the notifier's `instance` (by default made from the topic
prefix) in every ID, so two daemons on one broker never touch each other's entities. A
paused watch keeps its entities (`watching: false`); only a removed one is cleared.

Changes come through the outbox like every notifier's (retried, marked dead, replayable).
Retained states and discovery configs are published again on every new connection, so a
broker that lost them (restarted without persistence) has them back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
import orjson

from monitor.config import MqttNotifierConfig
from monitor.errors import DeliveryError
from monitor.models import (
    Change,
    ChangeKind,
    DaemonHealth,
    Delivery,
    EventStatus,
    Notice,
)
from monitor.notify.documents import change_message, is_test
from monitor.notify.notifiers.homeassistant import (
    HomeAssistant,
    attributes_of,
    event_topic,
    health_of,
    state_of,
)
from monitor.redact import redact
from monitor.tasks import finish
from monitor.times import iso

logger = logging.getLogger(__name__)

RECONNECT_AFTER = (0.5, 1.0)
"""Seconds between attempts to reach the broker again; the last step repeats. A refused
connection costs next to nothing, and what waits for the broker goes out when it is back."""
GOODBYE = 2.0
"""Seconds a stopping daemon gives the broker to hear it leave."""


class MqttNotifier:
    kind = "mqtt"

    def __init__(self, name: str, config: MqttNotifierConfig) -> None:
        self.name = name
        self.config = config
        parts = urlsplit(config.url)
        self._tls = parts.scheme == "mqtts"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (8883 if self._tls else 1883)
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        prefix = config.topic_prefix.rstrip("/")
        self._status_topic = f"{prefix}/status"
        self._prefix = prefix
        self._client: aiomqtt.Client | None = None
        self._connecting = asyncio.Lock()
        self._states: dict[str, EventStatus] = {}
        self._keeper: asyncio.Task[None] | None = None
        self._discovered: dict[str, str | None] = {}
        """Events whose discovery configs this connection published, with the name used."""
        self._attributes: dict[str, dict[str, Any]] = {}
        """The attributes this connection published, by event: sent again only changed."""
        self._health: DaemonHealth | None = None
        self._daemon_discovered = False
        self._homeassistant = HomeAssistant(
            prefix, config.instance_name, config.discovery_prefix.rstrip("/")
        )
        self._failing = False
        self.on_return: Callable[[], None] | None = None
        """Called when the broker answers again after a loss (see `Reconnecting`)."""
        self._speaks_for_daemon = False
        """Set by `publish_states`: only the daemon's notifier says `online` and `offline`,
        never the one `notify test` builds."""

    # -- the Notifier protocol -------------------------------------------------------------

    async def send(self, delivery: Delivery) -> str:
        try:
            client = await self._connected()
            for change in delivery.changes:
                if is_test(change):
                    await self._publish(client, f"{self._prefix}/test", change_message(change))
                    continue
                await self._publish(
                    client, self._topic(change.event_id, "changes"), change_message(change)
                )
                if change.kind is not ChangeKind.INVENTORY:
                    continue  # news, not a state: the retained state stays as it is
                status = status_of(change)
                self._states[change.event_id] = status
                await self._announce(client, status)
        except aiomqtt.MqttError as exc:
            self._failing = True
            await self._drop()
            raise DeliveryError(self._reason(exc)) from None
        return f"published at QoS {self.config.qos} to {self._host}:{self._port}"

    async def send_notice(self, notice: Notice) -> str:
        message = {
            "type": notice.kind.message_type,
            "timestamp": iso(notice.at),
            "data": {"subject": notice.subject, "body": notice.body},
        }
        try:
            client = await self._connected()
            await self._publish(client, f"{self._prefix}/notices", message)
        except aiomqtt.MqttError as exc:
            self._failing = True
            await self._drop()
            raise DeliveryError(self._reason(exc)) from None
        return f"published to {self._host}:{self._port}"

    async def aclose(self) -> None:
        if self._keeper is not None:
            await finish(self._keeper)
        client, self._client = self._client, None
        if client is None:
            return
        # A broker that went away must not hold up a shutdown: the goodbye gets two seconds.
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            if self._speaks_for_daemon:
                # A clean goodbye skips the last will, so say `offline` ourselves.
                await asyncio.wait_for(
                    client.publish(self._status_topic, "offline", qos=1, retain=True), GOODBYE
                )
            await asyncio.wait_for(client.__aexit__(None, None, None), GOODBYE)

    # -- the StatePublisher protocol -------------------------------------------------------

    async def publish_states(self, events: Sequence[EventStatus]) -> None:
        """Announce every watched event; until the broker answers, keep trying in the
        background (the daemon does not wait for it). Later calls announce what is new."""
        self._speaks_for_daemon = True
        states = {
            event.event_id: _newer(self._states.get(event.event_id), event) for event in events
        }
        fresh = [event for key, event in states.items() if self._states.get(key) != event]
        self._states = states
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep_connected(), name=f"mqtt-{self.name}")
        elif self._client is not None:
            try:
                for status in fresh:
                    await self._announce(self._client, status)
            except aiomqtt.MqttError as exc:
                logger.warning("notifier %s: %s", self.name, self._reason(exc))
                await self._drop()

    async def forget(self, event_ids: Sequence[str]) -> None:
        """Clear what was retained about events no longer watched: their state, and the
        discovery configs, so Home Assistant drops their entities."""
        for event_id in event_ids:
            self._states.pop(event_id, None)
            self._discovered.pop(event_id, None)
            self._attributes.pop(event_id, None)
        try:
            client = await self._connected()
            for event_id in event_ids:
                for leaf in ("state", "attributes"):
                    await client.publish(self._topic(event_id, leaf), b"", qos=1, retain=True)
                for topic, _ in self._homeassistant.event(EventStatus(event_id, None, None, None)):
                    await client.publish(topic, b"", qos=1, retain=True)
        except aiomqtt.MqttError as exc:
            logger.warning(
                "notifier %s: could not clear %d removed events: %s",
                self.name,
                len(event_ids),
                self._reason(exc),
            )
            await self._drop()

    async def pause(self, events: Sequence[EventStatus]) -> None:
        """Events paused: their entities stay, with the attribute `watching: false`."""
        try:
            client = await self._connected()
            for status in events:
                await self._announce(client, status._replace(watching=False))
        except aiomqtt.MqttError as exc:
            logger.warning("notifier %s: %s", self.name, self._reason(exc))
            await self._drop()

    async def publish_health(self, health: DaemonHealth) -> None:
        """The daemon's own device: last poll, upstream health, quota left."""
        self._speaks_for_daemon = True
        if health == self._health:
            return
        self._health = health
        if self._client is None:
            return  # published on (re)connection
        try:
            await self._announce_health(self._client, health)
        except aiomqtt.MqttError as exc:
            logger.warning("notifier %s: %s", self.name, self._reason(exc))
            await self._drop()

    # -- the connection --------------------------------------------------------------------

    async def _connected(self) -> aiomqtt.Client:
        async with self._connecting:
            if self._client is not None:
                return self._client
            client = aiomqtt.Client(
                self._host,
                self._port,
                username=self._username,
                password=self._password,
                identifier=f"inventory-monitor-{self.name}-{uuid.uuid4().hex[:8]}",
                will=(
                    aiomqtt.Will(self._status_topic, "offline", qos=1, retain=True)
                    if self._speaks_for_daemon
                    else None
                ),
                tls_context=self._tls_context(),
                timeout=self.config.timeout,
            )
            await client.__aenter__()
            self._discovered.clear()  # a broker that restarted may have lost them
            self._attributes.clear()
            self._daemon_discovered = False
            try:
                if self._speaks_for_daemon:
                    await client.publish(self._status_topic, "online", qos=1, retain=True)
                if self._health is not None:
                    await self._announce_health(client, self._health)
                announced: dict[str, EventStatus] = {}
                # States that `publish_states` replaced while these went out (it announces
                # only on a connection already made) are announced too.
                while fresh := [
                    status for key, status in self._states.items() if announced.get(key) != status
                ]:
                    for status in fresh:
                        await self._announce(client, status)
                        announced[status.event_id] = status
            except aiomqtt.MqttError:
                with contextlib.suppress(aiomqtt.MqttError):
                    await client.__aexit__(None, None, None)
                raise
            self._client = client
            if self._failing:
                logger.info("notifier %s: the broker answers again", self.name)
                if self.on_return is not None:
                    self.on_return()
            self._failing = False
            return client

    async def _keep_connected(self) -> None:
        """Stay connected: a lost broker is tried again with backoff, and on its return it
        hears `online` and every state at once."""
        attempt = 0
        while True:
            try:
                client = await self._connected()
                attempt = 0
                async for _ in client.messages:  # no subscriptions: this waits for a loss
                    pass
            except aiomqtt.MqttError as exc:
                if not self._failing:
                    logger.warning(
                        "notifier %s: %s; trying again in the background",
                        self.name,
                        self._reason(exc),
                    )
                self._failing = True
                await self._drop()
            await asyncio.sleep(RECONNECT_AFTER[min(attempt, len(RECONNECT_AFTER) - 1)])
            attempt += 1

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(aiomqtt.MqttError, RuntimeError, TimeoutError):
                await asyncio.wait_for(client.__aexit__(None, None, None), GOODBYE)

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self._tls:
            return None
        context = ssl.create_default_context()
        if not self.config.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _reason(self, error: aiomqtt.MqttError) -> str:
        return redact(f"MQTT broker {self._host}:{self._port}: {error}")

    # -- what is published -----------------------------------------------------------------

    def _topic(self, event_id: str, leaf: str) -> str:
        return event_topic(self._prefix, event_id, leaf)

    async def _publish(self, client: aiomqtt.Client, topic: str, message: object) -> None:
        await client.publish(topic, orjson.dumps(message), qos=self.config.qos)

    async def _announce(self, client: aiomqtt.Client, status: EventStatus) -> None:
        """The event's retained state (once it has been read) and attributes, and its
        discovery configs when asked for."""
        if status.current is not None:
            await client.publish(
                self._topic(status.event_id, "state"),
                orjson.dumps(state_of(status)),
                qos=self.config.qos,
                retain=True,
            )
        attributes = attributes_of(status)
        if self._attributes.get(status.event_id) != attributes:
            await client.publish(
                self._topic(status.event_id, "attributes"),
                orjson.dumps(attributes),
                qos=self.config.qos,
                retain=True,
            )
            self._attributes[status.event_id] = attributes
        # Discovery configs depend on the name alone: once per connection is enough, not
        # three more messages with every change.
        if self.config.homeassistant and self._discovered.get(status.event_id, ...) != status.name:
            for topic, config in self._homeassistant.event(status):
                await client.publish(topic, orjson.dumps(config), qos=1, retain=True)
            self._discovered[status.event_id] = status.name

    async def _announce_health(self, client: aiomqtt.Client, health: DaemonHealth) -> None:
        await client.publish(
            f"{self._prefix}/daemon/state", orjson.dumps(health_of(health)), qos=1, retain=True
        )
        if self.config.homeassistant and not self._daemon_discovered:
            for topic, config in self._homeassistant.daemon():
                await client.publish(topic, orjson.dumps(config), qos=1, retain=True)
            self._daemon_discovered = True


def _newer(known: EventStatus | None, read: EventStatus) -> EventStatus:
    """What was read from the database, unless a change sent since is newer than it."""
    if known is None or known.changed_at is None:
        return read
    if read.changed_at is not None and read.changed_at >= known.changed_at:
        return read
    return known._replace(name=read.name, info=read.info, watching=read.watching)


def status_of(change: Change) -> EventStatus:
    return EventStatus(
        change.event_id, change.known_name, change.current, change.observed_at, change.event
    )
