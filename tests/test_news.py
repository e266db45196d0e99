"""News besides availability: a cancellation and a sale opening, each found by the details
refresh, stored, routed and delivered once to a real webhook receiver."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from monitor.config import Rule
from monitor.config.notifiers import WebhookNotifierConfig
from monitor.devtools.catalog import discovery_event
from monitor.discovery.client import DiscoveryClient
from monitor.discovery_jobs.refresher import DetailsRefresher
from monitor.models import ChangeKind, SaleOpening
from monitor.notify.dispatcher import Dispatcher
from monitor.notify.notifiers.webhook import WebhookNotifier
from monitor.notify.roster import Route
from monitor.notify.routing import Target
from monitor.polling.news import lifecycle_change
from monitor.polling.watchlist import Watch
from monitor.sales import sales_opened
from monitor.store.event_details import Details
from monitor.store.outbox import Outbox
from tests.conftest import API_KEY
from tests.e2e import Receiver
from tests.rig import INTERVAL, Rig, RigBuilder
from tests.support import RN, A

DAY = 86400.0


@pytest.mark.unit
@pytest.mark.parametrize(
    ("before", "after", "news"),
    [
        ("onsale", "canceled", ("onsale", "canceled")),
        ("postponed", "rescheduled", ("postponed", "rescheduled")),
        ("onsale", "onsale", None),
        (None, "canceled", None),  # a first look is no news
        ("onsale", None, None),  # Discovery no longer says: no news either
    ],
)
def test_lifecycle_news(
    before: str | None, after: str | None, news: tuple[str | None, str] | None
) -> None:
    assert lifecycle_change(before, after) == news


PRESALE = SaleOpening("presale", "Fan presale", 100.0)
PUBLIC = SaleOpening("public", None, 200.0)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("seen_until", "now", "opened"),
    [
        (50.0, 99.0, []),
        (50.0, 100.0, [PRESALE]),
        (50.0, 250.0, [PRESALE, PUBLIC]),
        (100.0, 250.0, [PUBLIC]),
        (None, 250.0, []),  # before the first look: no news
    ],
)
def test_sale_openings(seen_until: float | None, now: float, opened: list[SaleOpening]) -> None:
    assert sales_opened((PUBLIC, PRESALE), seen_until, now) == opened


async def newsroom(
    rig: RigBuilder, hook: Receiver, session: aiohttp.ClientSession, *, rules: tuple[Rule, ...]
) -> tuple[Rig, DetailsRefresher, Dispatcher, WebhookNotifier]:
    r = await rig(
        watches={"E1": Watch("E1", "Pulp", INTERVAL, (Target("ops", (rules,)),))},
        batch_size=10,
    )
    show = datetime.fromtimestamp(r.clock(), UTC) + timedelta(days=60)
    opens = datetime.fromtimestamp(r.clock(), UTC) + timedelta(hours=2)
    r.simulator.catalog.add(
        discovery_event(
            "E1",
            "Pulp",
            starts_at=show,
            public_sale=(opens, show),
            presales=(("Fan presale", opens - timedelta(hours=1), opens),),
        )
    )
    refresher = DetailsRefresher(
        Details(r.engine),
        lambda: DiscoveryClient(session, r.simulator_url, API_KEY, timeout=5.0),
        refresh=lambda: 600.0,
        clock=r.clock,
        watchlist=lambda: r.poller.watchlist,
    )
    config = WebhookNotifierConfig.model_validate({"type": "webhook", "url": hook.url})
    notifier = WebhookNotifier("ops", config)
    dispatcher = Dispatcher(
        Outbox(r.engine),
        {"ops": Route(notifier, config.retry, concurrency=2, timeout=10.0)},
        r.clock,
        rng=random.Random(7),
    )
    return r, refresher, dispatcher, notifier


async def deliver(dispatcher: Dispatcher) -> None:
    await dispatcher.pump()
    await dispatcher.drain()


async def test_a_cancellation_and_a_sale_opening_are_each_delivered_once(
    rig: RigBuilder, hook: Receiver
) -> None:
    async with aiohttp.ClientSession() as session:
        r, refresher, dispatcher, notifier = await newsroom(rig, hook, session, rules=())
        try:
            r.simulator.set("E1", A, RN)
            await r.cycle()
            await refresher.run()  # the first look: the sales ahead and the lifecycle
            await deliver(dispatcher)
            assert hook.bodies() == [], "a first look is no news"

            r.clock.advance(3600)  # the presale opens
            await refresher.run()
            await refresher.run()
            await deliver(dispatcher)
            (presale,) = hook.bodies()
            assert presale["type"] == "event.sale_opened"
            data = presale["data"]
            assert (data["kind"], data["event_id"], data["changed"]) == (
                "sale_opened",
                "E1",
                ["sale"],
            )
            assert data["sale"]["kind"] == "presale"
            assert data["sale"]["name"] == "Fan presale"
            assert data["event"]["name"] == "Pulp"

            r.simulator.catalog.events["E1"]["dates"]["status"]["code"] = "canceled"
            r.clock.advance(600)  # a refresh is due: Discovery says canceled
            await refresher.run()
            await refresher.run()
            await deliver(dispatcher)
            cancelled = hook.bodies()[1]
            assert cancelled["type"] == "event.lifecycle_changed"
            assert cancelled["data"]["previous"] == {"lifecycle": "onsale"}
            assert cancelled["data"]["current"] == {"lifecycle": "canceled"}
            assert cancelled["data"]["event"]["lifecycle"] == "canceled"

            r.clock.advance(3600)  # the public sale opens
            await refresher.run()
            await deliver(dispatcher)
            r.clock.advance(DAY)
            await refresher.run()
            await deliver(dispatcher)
            types = [b["type"] for b in hook.bodies()]
            assert types == [
                "event.sale_opened",
                "event.lifecycle_changed",
                "event.sale_opened",
            ], "each once, and nothing more a day later"
            assert hook.bodies()[2]["data"]["sale"]["kind"] == "public"
        finally:
            await notifier.aclose()


async def test_rules_choose_which_news_a_notifier_hears(rig: RigBuilder, hook: Receiver) -> None:
    """A notifier for availability alone hears no news; `kind` lets news through."""
    only_cancellations = (Rule.model_validate({"kind": "lifecycle"}),)
    async with aiohttp.ClientSession() as session:
        r, refresher, dispatcher, notifier = await newsroom(
            rig, hook, session, rules=only_cancellations
        )
        try:
            await refresher.run()
            r.simulator.catalog.events["E1"]["dates"]["status"]["code"] = "postponed"
            r.clock.advance(3600)
            await refresher.run()
            await deliver(dispatcher)
            assert [b["type"] for b in hook.bodies()] == ["event.lifecycle_changed"]
            stored = await r.reads.changes_of("E1")
            assert {c.kind for c in stored} == {ChangeKind.LIFECYCLE, ChangeKind.SALE_OPENED}
        finally:
            await notifier.aclose()
