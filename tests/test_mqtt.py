"""The `mqtt` notifier against the real Mosquitto broker: retained states, Home Assistant
discovery, changes through the outbox, restarts, and a broker that goes away."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import orjson
import pytest
from sqlalchemy import update

from monitor.app import Monitor
from monitor.config import load_config, parse_config
from monitor.devtools.simulator import Simulator, serve
from monitor.models import Availability, EventStatus
from monitor.notify.notifiers import build_notifier
from monitor.notify.notifiers.mqtt import MqttNotifier
from monitor.store.outbox import Outbox
from monitor.store.tables import deliveries
from tests.conftest import API_KEY, ConfigFactory
from tests.e2e import daemon_config, run_cli
from tests.support import RN, A, F, N, eventually, free_port

BROKER = ("127.0.0.1", 1883)


def broker_reachable(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


@pytest.fixture(autouse=True)
def mosquitto() -> None:
    if broker_reachable(*BROKER):
        return
    reason = f"no MQTT broker at {BROKER[0]}:{BROKER[1]} (start mosquitto)"
    if os.environ.get("MONITOR_REQUIRE_MQTT") == "1":
        pytest.fail(reason + " (MONITOR_REQUIRE_MQTT=1 makes it required)")
    pytest.skip(reason)


@dataclass
class Subscriber:
    """Everything published under some topics, in order, as a subscriber saw it."""

    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    markers: str = ""
    """Where `barrier` publishes: a topic under the first filter."""
    client: aiomqtt.Client | None = None

    async def barrier(self) -> None:
        """Return once everything the broker had for this subscriber before the call has
        arrived: a marker published now comes after it, the broker keeping each
        subscriber's messages in order. The marker is not kept among the messages."""
        assert self.client is not None
        marker = f"{self.markers}/_barrier/{uuid.uuid4().hex}"
        await self.client.publish(marker, b"", qos=1)
        await eventually(lambda: any(topic == marker for topic, _, _ in self.messages))
        self.messages = [message for message in self.messages if message[0] != marker]

    def payloads(self, topic: str) -> list[bytes]:
        return [payload for seen, payload, _ in self.messages if seen == topic]

    def last(self, topic: str) -> Any:
        found = self.payloads(topic)
        return orjson.loads(found[-1]) if found and found[-1] else None

    def under(self, prefix: str) -> dict[str, bytes]:
        return {topic: payload for topic, payload, _ in self.messages if topic.startswith(prefix)}


@contextlib.asynccontextmanager
async def subscribed(*filters: str, port: int = BROKER[1]) -> AsyncIterator[Subscriber]:
    subscriber = Subscriber(markers=filters[0].removesuffix("/#"))
    async with aiomqtt.Client(BROKER[0], port) as client:
        subscriber.client = client
        for topic_filter in filters:
            await client.subscribe(topic_filter, qos=1)

        async def listen() -> None:
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else b""
                subscriber.messages.append((str(message.topic), payload, message.retain))

        listening = asyncio.create_task(listen())
        try:
            yield subscriber
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening


def instance_of(prefix: str) -> str:
    """The instance name made from a topic prefix: `im-test-1a` is `im_test_1a`."""
    return prefix.replace("-", "_")


def names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"im-test-{tag}", f"ha-test-{tag}"


def mqtt_settings(prefix: str, discovery: str, port: int = BROKER[1]) -> dict[str, Any]:
    return {
        "type": "mqtt",
        "url": f"mqtt://{BROKER[0]}:{port}",
        "topic_prefix": prefix,
        "homeassistant": True,
        "discovery_prefix": discovery,
        "retry": {"backoff": ["200ms"]},
    }


async def test_subscribers_see_states_discovery_and_each_change_once(
    make_config: ConfigFactory,
) -> None:
    prefix, discovery = names()
    simulator = Simulator(api_key=API_KEY)
    simulator.set("E1", A, RN)
    simulator.set("E2", N, RN)
    async with serve(simulator) as upstream, subscribed(f"{prefix}/#", f"{discovery}/#") as seen:
        config = make_config(
            ticketmaster={"base_url": upstream, "api_key": API_KEY},
            polling={"interval": "1s"},
            notifiers={"home": mqtt_settings(prefix, discovery)},
            events=[{"id": "E1", "name": "Show one"}, {"id": "E2"}],
        )
        state = f"{prefix}/events/E1/state"
        async with Monitor(config, housekeeping_every=0.1):
            await eventually(
                lambda: (seen.last(state) or {}).get("status") == "TICKETS_AVAILABLE",
                what="the baseline as the retained state",
            )
            assert seen.payloads(f"{prefix}/status")[-1] == b"online"
            await eventually(lambda: len(seen.under(f"{discovery}/")) == 9, what="discovery")
            configs = seen.under(f"{discovery}/")
            assert len(configs) == 9, "per event two sensors and a binary sensor; the daemon's"
            node = f"inventory_monitor_{instance_of(prefix)}_E1"
            binary = orjson.loads(
                configs[f"{discovery}/binary_sensor/{node}/tickets_available/config"]
            )
            assert binary["state_topic"] == state
            assert binary["availability_topic"] == f"{prefix}/status"
            assert binary["unique_id"] == f"{node}_tickets_available"
            assert binary["device"]["identifiers"] == [node]
            assert binary["device"]["name"] == "Show one"
            assert binary["device"]["configuration_url"].endswith("/event/E1")
            status = orjson.loads(configs[f"{discovery}/sensor/{node}/status/config"])
            assert status["device_class"] == "enum"
            assert status["options"] == [
                "TICKETS_AVAILABLE",
                "FEW_TICKETS_LEFT",
                "TICKETS_NOT_AVAILABLE",
                "UNKNOWN",
            ]
            attributes = f"{prefix}/events/E1/attributes"
            assert status["json_attributes_topic"] == attributes
            assert seen.last(attributes)["watching"] is True
            assert seen.last(attributes)["url"].endswith("/event/E1")
            await eventually(
                lambda: (seen.last(f"{prefix}/daemon/state") or {}).get("last_poll") is not None,
                what="the daemon's own state",
            )
            assert seen.last(f"{prefix}/daemon/state")["problem"] is False
            daemon = f"inventory_monitor_{instance_of(prefix)}_daemon"
            problem_sensor = orjson.loads(
                configs[f"{discovery}/binary_sensor/{daemon}/upstream/config"]
            )
            assert problem_sensor["device_class"] == "problem"
            last_poll = orjson.loads(configs[f"{discovery}/sensor/{daemon}/last_poll/config"])
            assert last_poll["device_class"] == "timestamp"

            simulator.set("E1", F, RN)
            changes = f"{prefix}/events/E1/changes"
            await eventually(lambda: len(seen.payloads(changes)) == 1, what="the change")
            await eventually(lambda: seen.last(state)["status"] == "FEW_TICKETS_LEFT")
            published = [topic for topic, _, _ in seen.messages if topic.startswith(discovery)]
            assert len(published) == 9, "discovery configs once, not again with every change"
        message = orjson.loads(seen.payloads(changes)[0])
        assert message["type"] == "inventory.changed"
        assert message["data"]["current"]["status"] == "FEW_TICKETS_LEFT"
        await eventually(
            lambda: seen.payloads(f"{prefix}/status")[-1] == b"offline",
            what="offline, said at a clean stop",
        )

        async with Monitor(config, housekeeping_every=0.1) as restarted:
            await eventually(lambda: seen.payloads(f"{prefix}/status")[-1] == b"online")
            polled = simulator.times_asked["E1"]
            await eventually(lambda: simulator.times_asked["E1"] >= polled + 2, what="polls")
            # A change is stored with its deliveries before anything is published.
            stored = await restarted.parts.stores.reads.changes_of("E1")
        assert len(stored) == 1, "polls after a restart find nothing new"
        assert len(seen.payloads(changes)) == 1, "a restart publishes no change again"


class PrivateBroker:
    """A Mosquitto of the test's own, which it may stop and start again."""

    def __init__(self, binary: str, config: Path, port: int) -> None:
        self.binary, self.config, self.port = binary, config, port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)], stderr=subprocess.DEVNULL
        )

    def require_password(self, user: str, password: str) -> None:
        """Start again, taking only `user` with `password`."""
        self.stop()
        passwords = self.config.parent / "passwords"
        subprocess.run(
            ["/usr/bin/mosquitto_passwd", "-b", "-c", str(passwords), user, password], check=True
        )
        # Run as root, Mosquitto becomes its own user, who may not read a test's files.
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous false\nuser root\n"
            f"password_file {passwords}\npersistence false\n"
        )
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(5)
            self.process = None


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        pytest.skip("mosquitto is not installed")
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = PrivateBroker(binary, config, port)
    broker.start()
    yield broker
    broker.stop()


@contextlib.asynccontextmanager
async def daemon_on_broker(
    make_config: ConfigFactory, notifier: dict[str, Any]
) -> AsyncIterator[tuple[Monitor, Simulator]]:
    """A daemon polling E1 every second and telling `notifier` (MQTT), past its baseline."""
    port = urlsplit(notifier["url"]).port or BROKER[1]
    await eventually(lambda: broker_reachable(BROKER[0], port), what="the broker")
    simulator = Simulator(api_key=API_KEY)
    simulator.set("E1", A, RN)
    async with serve(simulator) as upstream:
        config = make_config(
            ticketmaster={"base_url": upstream, "api_key": API_KEY},
            polling={"interval": "1s"},
            notifiers={"home": notifier},
            events=[{"id": "E1"}],
        )
        async with Monitor(config, housekeeping_every=0.1) as monitor:
            await eventually(lambda: simulator.requests >= 2, what="the baseline")
            yield monitor, simulator


async def test_a_broker_that_goes_away_loses_nothing(
    make_config: ConfigFactory,
    private_broker: PrivateBroker,
) -> None:
    port = private_broker.port
    prefix, discovery = names()
    settings = mqtt_settings(prefix, discovery, port)
    async with daemon_on_broker(make_config, settings) as (monitor, simulator):
        private_broker.stop()
        simulator.set("E1", F, RN)
        await eventually(
            lambda: simulator.requests >= 6, what="the change, found while the broker is away"
        )
        private_broker.start()
        await eventually(lambda: broker_reachable(BROKER[0], port), what="the broker back")
        async with subscribed(f"{prefix}/#", port=port) as seen:
            # The retry may go out before this subscription is made: the retained state it
            # publishes is what any subscriber sees, now or later.
            await eventually(
                lambda: (seen.last(f"{prefix}/events/E1/state") or {}).get("status") == F.value,
                within=10,
                what="the change, retried through the outbox",
            )
            outbox = Outbox(monitor.parts.stores.repository.engine)

            async def all_delivered() -> bool:
                # The state may be the one announced again on reconnecting, a moment before
                # the delivery's own retry is recorded.
                return {row.state for row in await outbox.list_deliveries()} == {"delivered"}

            await eventually(all_delivered, what="the delivery, retried")
            await eventually(
                lambda: b"online" in seen.payloads(f"{prefix}/status"), what="a fresh online"
            )
        assert monitor.metrics.deliveries.labels("home", "failed")._value.get() >= 1


async def test_a_broker_that_is_back_gets_the_waiting_delivery_at_once(
    make_config: ConfigFactory,
    private_broker: PrivateBroker,
) -> None:
    """The delivery failed while the broker was away, and its retry is a minute off: it goes
    out when the connection is made again, not when that minute runs out."""
    port = private_broker.port
    prefix, discovery = names()
    settings = {**mqtt_settings(prefix, discovery, port), "retry": {"backoff": ["1h"]}}
    async with daemon_on_broker(make_config, settings) as (monitor, simulator):
        outbox = Outbox(monitor.parts.stores.repository.engine)
        private_broker.stop()
        simulator.set("E1", F, RN)
        failed = monitor.metrics.deliveries.labels("home", "failed")
        await eventually(lambda: failed._value.get() >= 1, what="the delivery failed")
        (waiting,) = [r for r in await outbox.list_deliveries() if r.state == "pending"]
        async with monitor.parts.stores.repository.engine.begin() as connection:  # its jitter aside
            await connection.execute(
                update(deliveries)
                .where(deliveries.c.id == waiting.id)
                .values(next_attempt_at=monitor.clock() + 60)
            )

        private_broker.start()
        await eventually(lambda: broker_reachable(BROKER[0], port), what="the broker back")

        async def delivered() -> bool:
            rows = await outbox.list_deliveries()
            return any(r.id == waiting.id and r.state == "delivered" for r in rows)

        await eventually(delivered, within=2.0, what="the delivery, once the broker is back")


async def test_a_removed_watch_leaves_nothing_retained() -> None:
    prefix, discovery = names()
    notifier = _notifier(prefix, discovery)
    shown = Availability(A, RN)
    await notifier.publish_states(
        [EventStatus("E1", "One", shown, 1.0), EventStatus("E2", "Two", shown, 1.0)]
    )
    async with subscribed(f"{prefix}/#", f"{discovery}/#") as seen:
        await eventually(lambda: len(seen.under(f"{discovery}/")) == 6)
    await notifier.forget(["E2"])
    await notifier.aclose()
    async with subscribed(f"{prefix}/#", f"{discovery}/#") as retained:
        await eventually(lambda: f"{prefix}/events/E1/state" in retained.under(prefix))
        await retained.barrier()
    topics = set(retained.under(""))
    assert f"{prefix}/events/E2/state" not in topics
    assert f"{prefix}/events/E2/attributes" not in topics
    instance = instance_of(prefix)
    assert not [topic for topic in topics if f"inventory_monitor_{instance}_E2" in topic]
    assert len([topic for topic in topics if f"inventory_monitor_{instance}_E1" in topic]) == 3


def _notifier(prefix: str, discovery: str) -> MqttNotifier:
    settings = parse_config(
        orjson.dumps(
            {
                "ticketmaster": {"api_key": API_KEY},
                "notifiers": {"home": mqtt_settings(prefix, discovery)},
            }
        ).decode(),
        "test.json",
        {},
    ).notifiers["home"]
    notifier = build_notifier("home", settings)
    assert isinstance(notifier, MqttNotifier)
    return notifier


async def test_two_instances_on_one_broker_keep_their_entities_apart() -> None:
    first, discovery = names()
    second = f"{first}-other"
    shown = Availability(A, RN)
    one, other = _notifier(first, discovery), _notifier(second, discovery)
    for notifier in (one, other):
        await notifier.publish_states([EventStatus("E1", "One", shown, 1.0)])
    async with subscribed(f"{discovery}/#") as seen:
        await eventually(lambda: len(seen.under(f"{discovery}/")) == 6, what="both instances")
    configs = {topic: orjson.loads(payload) for topic, payload in seen.under(discovery).items()}
    assert len({config["unique_id"] for config in configs.values()}) == 6
    for prefix in (first, second):
        mine = [c for c in configs.values() if c["state_topic"].startswith(f"{prefix}/")]
        assert len(mine) == 3, "each instance's entities point at its own topics"
        assert {c["device"]["identifiers"][0] for c in mine} == {
            f"inventory_monitor_{instance_of(prefix)}_E1"
        }
    await other.forget(["E1"])
    await other.aclose()
    await one.aclose()
    async with subscribed(f"{discovery}/#") as retained:
        await eventually(lambda: len(retained.under(f"{discovery}/")) == 3, what="one left")
        await retained.barrier()
    assert all(instance_of(first) in topic for topic in retained.under(discovery))


async def test_an_event_not_read_yet_has_no_state_of_nulls() -> None:
    prefix, discovery = names()
    notifier = _notifier(prefix, discovery)
    await notifier.publish_states([EventStatus("E3", None, None, None)])
    async with subscribed(f"{prefix}/#", f"{discovery}/#") as seen:
        await eventually(lambda: len(seen.under(f"{discovery}/")) == 3, what="its entities")
        await eventually(lambda: f"{prefix}/events/E3/attributes" in seen.under(prefix))
        assert f"{prefix}/events/E3/state" not in seen.under(prefix)
        await notifier.publish_states([EventStatus("E3", None, Availability(N, RN), 2.0)])
        await eventually(
            lambda: (seen.last(f"{prefix}/events/E3/state") or {}).get("status") == N.value
        )
    await notifier.forget(["E3"])
    await notifier.aclose()


async def test_a_paused_watch_keeps_its_entities_and_resuming_changes_one_attribute(
    make_config: ConfigFactory,
) -> None:
    prefix, discovery = names()
    simulator = Simulator(api_key=API_KEY)
    simulator.set("E1", A, RN)
    async with serve(simulator) as upstream, subscribed(f"{prefix}/#", f"{discovery}/#") as seen:
        config = make_config(
            ticketmaster={"base_url": upstream, "api_key": API_KEY},
            polling={"interval": "1s"},
            server={"port": 0, "token": "pause-test-token"},
            notifiers={"home": mqtt_settings(prefix, discovery)},
            events=[{"id": "E1", "name": "Show one"}],
        )
        attributes = f"{prefix}/events/E1/attributes"
        async with Monitor(config, housekeeping_every=0.1) as monitor:
            await eventually(lambda: seen.last(f"{prefix}/events/E1/state") is not None)
            configs = len([t for t, _, _ in seen.messages if t.startswith(discovery)])
            assert monitor.context is not None
            assert monitor.context.watching is not None
            await monitor.context.watching.pause("E1", "test")
            await eventually(lambda: seen.last(attributes)["watching"] is False, what="paused")
            # The pause returned once the broker had what it published: a marker sent now
            # reaches this subscriber after all of it.
            await seen.barrier()
            retained = seen.under(f"{discovery}/")
            assert all(retained.values()), "no discovery config is emptied by a pause"
            assert seen.last(f"{prefix}/events/E1/state")["status"] == A.value
            await monitor.context.watching.pause("E1", "test", paused=False)
            await eventually(lambda: seen.last(attributes)["watching"] is True, what="resumed")
            await seen.barrier()
            published = [t for t, _, _ in seen.messages if t.startswith(discovery)]
            assert len(published) == configs, "resuming changes the attribute alone"


async def test_notify_test_publishes_a_marked_message_and_names_a_refusal(tmp_path: Path) -> None:
    prefix, discovery = names()
    path = daemon_config(
        tmp_path / "monitor.yaml",
        "http://127.0.0.1:9",
        [],
        notifiers={
            "home": mqtt_settings(prefix, discovery),
            "away": mqtt_settings(prefix, discovery, free_port()),
        },
    )
    async with subscribed(f"{prefix}/#") as seen:
        code, out, err = await run_cli("notify", "test", "home", "--config", str(path))
        assert code == 0, err
        await eventually(lambda: bool(seen.payloads(f"{prefix}/test")))
    assert "home: sent (published at QoS 1" in out
    assert orjson.loads(seen.payloads(f"{prefix}/test")[0])["type"] == "inventory.test"
    assert not seen.payloads(f"{prefix}/status"), "a test says nothing of the daemon's health"
    code, out, _ = await run_cli("notify", "test", "away", "--config", str(path))
    assert code == 1
    assert "away: failed: MQTT broker 127.0.0.1:" in out
    assert "refused" in out.lower()


def test_mqtt_settings_are_checked(make_config: ConfigFactory) -> None:
    with pytest.raises(Exception, match=r"notifiers\.home\.url: expected mqtt://"):
        make_config(notifiers={"home": {"type": "mqtt", "url": "http://127.0.0.1"}})
    with pytest.raises(Exception, match=r"notifiers\.home\.qos"):
        make_config(notifiers={"home": {"type": "mqtt", "url": "mqtt://h", "qos": 3}})
    config = make_config(
        notifiers={"home": {"type": "mqtt", "url": "mqtt://me:s3cret-pw@broker.lan:1884"}}
    )
    assert "s3cret-pw" in config.secrets()


async def test_a_broker_out_of_reach_or_refusing_us_holds_up_no_other_notifier(
    make_config: ConfigFactory, private_broker: PrivateBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """One broker refuses the login, the other is not there at all: the daemon starts, the
    log notifier hears the change, and the MQTT deliveries wait in the outbox."""
    private_broker.require_password("monitor", "right-password")
    await eventually(
        lambda: broker_reachable(BROKER[0], private_broker.port), what="the broker, guarded"
    )
    prefix, discovery = names()
    refused = mqtt_settings(prefix, discovery, private_broker.port)
    refused["url"] = f"mqtt://monitor:wrong-password@127.0.0.1:{private_broker.port}"
    simulator = Simulator(api_key=API_KEY)
    simulator.set("E1", A, RN)
    async with serve(simulator) as upstream:
        config = make_config(
            ticketmaster={"base_url": upstream, "api_key": API_KEY},
            polling={"interval": "1s"},
            notifiers={
                "refused": refused,
                "absent": mqtt_settings(prefix, discovery, free_port()),
                "console": {"type": "log"},
            },
            events=[{"id": "E1"}],
        )
        async with Monitor(config, housekeeping_every=0.1) as monitor:
            await eventually(lambda: simulator.requests >= 2, what="the baseline")
            simulator.set("E1", F, RN)
            delivered = monitor.metrics.deliveries.labels("console", "delivered")
            await eventually(lambda: delivered._value.get() == 1, what="the log notifier")
            failed = monitor.metrics.deliveries.labels("refused", "failed")
            await eventually(lambda: failed._value.get() >= 1, what="a refused delivery")
    assert "wrong-password" not in caplog.text
    refusals = [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith("notifier refused:")
        and "background" in record.getMessage()
    ]
    assert len(refusals) == 1, "the broker's refusal is logged once per streak"
    assert "not authori" in refusals[0].lower()


async def test_a_watch_removed_by_a_reload_is_cleared_from_the_broker(tmp_path: Path) -> None:
    prefix, discovery = names()
    simulator = Simulator(api_key=API_KEY)
    async with serve(simulator) as upstream:
        path = tmp_path / "monitor.yaml"

        def write(events: list[str]) -> None:
            daemon_config(
                path,
                upstream,
                [{"id": event} for event in events],
                notifiers={"home": mqtt_settings(prefix, discovery)},
            )

        write(["E1", "E2"])
        state = f"{prefix}/events/E2/state"
        async with (
            Monitor(
                load_config(path), config_path=path, watch_every=3600, housekeeping_every=0.1
            ) as monitor,
            subscribed(f"{prefix}/#", f"{discovery}/#") as seen,
        ):
            await eventually(lambda: bool(seen.payloads(state)), what="E2 announced")
            write(["E1"])
            assert await monitor.reload()
            await eventually(lambda: seen.payloads(state)[-1] == b"", what="E2 cleared")
            await eventually(
                lambda: any(
                    topic.endswith(f"inventory_monitor_{instance_of(prefix)}_E2/status/config")
                    and not payload
                    for topic, payload, _ in seen.messages
                ),
                what="E2's entities dropped",
            )
    async with subscribed(f"{prefix}/#") as retained:
        await eventually(lambda: f"{prefix}/events/E1/state" in retained.under(prefix))
    assert f"{prefix}/events/E2/state" not in retained.under(prefix)
