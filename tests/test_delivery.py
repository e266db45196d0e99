"""The outbox dispatcher and the webhook notifier against a real local receiver."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from standardwebhooks.webhooks import Webhook

from monitor.config import WebhookNotifierConfig
from monitor.notify.dispatcher import Dispatcher
from monitor.notify.notifiers.webhook import WebhookNotifier
from monitor.notify.roster import Route
from monitor.store.outbox import DeliveryRow, Outbox
from monitor.store.repository import Repository
from tests.conftest import FakeClock, change_with_delivery
from tests.e2e import Receiver, receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class Rig:
    repository: Repository
    dispatcher: Dispatcher
    hook: Receiver
    clock: FakeClock

    async def attempt(self) -> int:
        started = await self.dispatcher.pump()
        await self.dispatcher.drain()
        return started

    async def delivery(self) -> DeliveryRow:
        (row,) = await Outbox(self.repository.engine).list_deliveries()
        return row


RigBuilder = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def rig(repository: Repository, clock: FakeClock) -> AsyncIterator[RigBuilder]:
    notifiers: list[WebhookNotifier] = []
    async with receiver() as hook:

        async def build(url: str | None = None, secret: str | None = None) -> Rig:
            config = WebhookNotifierConfig.model_validate(
                {
                    "type": "webhook",
                    "url": url or hook.url,
                    "secret": secret,
                    "retry": {"backoff": ["10s", "1m"], "give_up_after": "1h"},
                }
            )
            notifier = WebhookNotifier("ops", config)
            notifiers.append(notifier)
            route = Route(notifier, config.retry, concurrency=2, timeout=10.0)
            dispatcher = Dispatcher(
                Outbox(repository.engine), {"ops": route}, clock, rng=random.Random(7)
            )
            write = change_with_delivery(1, at=clock())
            await repository.save_poll(write)
            return Rig(repository, dispatcher, hook, clock)

        yield build
    for notifier in notifiers:
        await notifier.aclose()


async def test_signature_verifies_with_an_independent_implementation(
    rig: RigBuilder, clock: FakeClock
) -> None:
    clock.now = time.time()  # the verifier checks the timestamp against its own clock
    r = await rig(secret=SECRET)
    assert await r.attempt() == 1
    ((headers, body),) = r.hook.requests
    payload = Webhook(SECRET).verify(body, {k.lower(): v for k, v in headers.items()})
    assert payload["data"]["event_id"] == "E1"
    assert headers["webhook-id"] == "d1"
    assert headers["webhook-timestamp"] == str(int(r.clock()))
    assert (await r.delivery()).state == "delivered"


async def test_a_5xx_is_retried_with_the_same_id_and_a_new_timestamp(rig: RigBuilder) -> None:
    r = await rig()
    r.hook.statuses = [503]
    await r.attempt()
    failed = await r.delivery()
    assert (failed.state, failed.attempts, failed.last_error) == ("pending", 1, "HTTP 503")
    assert 0 <= failed.next_attempt_at - r.clock() <= 10
    assert await r.attempt() == 0, "not before the backoff"
    r.clock.advance(10)
    assert await r.attempt() == 1
    (first, _), (second, body) = r.hook.requests
    assert first["webhook-id"] == second["webhook-id"] == "d1"
    assert int(second["webhook-timestamp"]) > int(first["webhook-timestamp"])
    assert json.loads(body)["data"]["change_id"] == "c1"
    assert (await r.delivery()).state == "delivered"


async def test_retry_after_is_honoured(rig: RigBuilder) -> None:
    r = await rig()
    r.hook.statuses = [(429, {"Retry-After": "120"})]
    await r.attempt()
    waiting = await r.delivery()
    assert waiting.next_attempt_at - r.clock() >= 120
    r.clock.advance(60)
    assert await r.attempt() == 0


async def test_a_redirect_is_a_failure_and_is_not_followed(rig: RigBuilder) -> None:
    r = await rig()
    r.hook.statuses = [(302, {"Location": r.hook.url.replace("/hook", "/elsewhere")})]
    await r.attempt()
    assert len(r.hook.requests) == 1
    row = await r.delivery()
    assert row.state == "dead"
    assert "redirects are not followed" in (row.last_error or "")


async def test_410_gone_stops_retrying_loudly(
    rig: RigBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    r = await rig()
    r.hook.statuses = [410]
    with caplog.at_level(logging.ERROR):
        await r.attempt()
    assert (await r.delivery()).state == "dead"
    assert "the endpoint is gone" in caplog.text
    r.clock.advance(3600)
    assert await r.attempt() == 0


async def test_retries_give_up_after_the_deadline(rig: RigBuilder) -> None:
    r = await rig()
    r.hook.statuses = [500] * 100
    for _ in range(80):
        await r.attempt()
        r.clock.advance(60)
    row = await r.delivery()
    assert row.state == "dead"
    assert 55 <= row.attempts <= 61  # an attempt a minute at most, for an hour


async def test_an_unreachable_receiver_is_retried(rig: RigBuilder) -> None:
    r = await rig(url="http://127.0.0.1:9/hook")  # nothing listens on the discard port
    await r.attempt()
    row = await r.delivery()
    assert row.state == "pending"
    assert "connection refused by 127.0.0.1:9" in (row.last_error or "")


async def test_a_receiver_that_answers_again_gets_its_waiting_deliveries_at_once(
    rig: RigBuilder, repository: Repository
) -> None:
    r = await rig()
    r.hook.statuses = [503]
    await r.attempt()
    waiting = await r.delivery()
    assert waiting.state == "pending"
    assert waiting.next_attempt_at > r.clock(), "a backoff (jittered, up to 10 s)"

    await repository.save_poll(change_with_delivery(2, at=r.clock(), event_id="E2"))
    assert await r.attempt() == 1, "the new change goes out, and the receiver takes it"
    assert await r.attempt() == 1, "so the one waiting out its backoff goes now, not in 10 s"
    assert [json.loads(body)["data"]["change_id"] for _, body in r.hook.requests] == [
        "c1",
        "c2",
        "c1",
    ]
    rows = await Outbox(repository.engine).list_deliveries()
    assert {row.state for row in rows} == {"delivered"}
