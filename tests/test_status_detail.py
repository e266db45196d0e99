"""Why Ticketmaster answered UNKNOWN (`statusDetail`): kept beside the state, shown in words,
and an event Ticketmaster says it does not know is polled rarely until it knows it."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
import yaml
from sqlalchemy import select

from monitor.app import Monitor
from monitor.devtools.simulator import Simulator, serve
from monitor.models import (
    INVALID_EVENT_ID,
    NO_DETAIL,
    Answer,
    Availability,
    ResaleStatus,
    Status,
    StatusDetail,
    new_id,
)
from monitor.polling.detect import detail_kept, reading_of, repeats_detail
from monitor.polling.watchlist import Watch
from monitor.store.repository import Repository
from monitor.store.tables import events
from tests.conftest import API_KEY, ConfigFactory
from tests.e2e import run_cli
from tests.rig import Rig, RigBuilder
from tests.support import RN, A, U, eventually

OWN, SLOW = 60.0, 3600.0
INVALID = StatusDetail(INVALID_EVENT_ID, INVALID_EVENT_ID)
UNSUPPORTED = StatusDetail("NOT_SUPPORTED", None)
KNOWN = Availability(Status.TICKETS_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE)
UNKNOWN = Availability(Status.UNKNOWN, ResaleStatus.UNKNOWN)


def answer(status: str, resale: str, **detail: str) -> Answer:
    return Answer.of("E1", {"status": status, "resaleStatus": resale, **detail})


@pytest.mark.unit
@pytest.mark.parametrize(
    ("item", "current", "kept"),
    [
        # Nothing UNKNOWN read or accepted: nothing to explain, nothing kept.
        (answer("TICKETS_AVAILABLE", "TICKETS_NOT_AVAILABLE"), KNOWN, None),
        # An UNKNOWN read keeps its reason while the known state holds (a streak).
        (
            answer("UNKNOWN", "UNKNOWN", statusDetail=INVALID_EVENT_ID),
            KNOWN,
            StatusDetail(INVALID_EVENT_ID, None),
        ),
        # An accepted UNKNOWN keeps a reason even when none was given, so that a later
        # reason is noticed.
        (answer("UNKNOWN", "UNKNOWN"), UNKNOWN, NO_DETAIL),
        (answer("UNKNOWN", "UNKNOWN", statusDetail="NOT_SUPPORTED"), None, UNSUPPORTED),
        # Anything but a short code is no reason.
        (Answer.of("E1", {"status": "UNKNOWN", "statusDetail": 7}), None, NO_DETAIL),
    ],
)
def test_what_a_state_keeps_of_the_reasons(
    item: Answer, current: Availability | None, kept: StatusDetail | None
) -> None:
    assert detail_kept(item.detail, reading_of(item), current) == kept


@pytest.mark.unit
@pytest.mark.parametrize(
    ("kept", "item", "repeats"),
    [
        (None, {"statusDetail": INVALID_EVENT_ID}, True),  # a known state reads no reasons
        (NO_DETAIL, {}, True),
        (NO_DETAIL, {"statusDetail": INVALID_EVENT_ID}, False),
        (INVALID, {"statusDetail": INVALID_EVENT_ID, "resaleStatusDetail": INVALID_EVENT_ID}, True),
        (INVALID, {"statusDetail": "NOT_SUPPORTED"}, False),
    ],
)
def test_an_answer_repeats_the_reasons_kept(
    kept: StatusDetail | None, item: dict[str, object], repeats: bool
) -> None:
    assert repeats_detail(kept, item) is repeats


async def stored_detail(r: Rig, event_id: str) -> tuple[str | None, str | None]:
    async with r.engine.connect() as conn:
        row = (
            await conn.execute(
                select(events.c.status_detail, events.c.resale_status_detail).where(
                    events.c.event_id == event_id
                )
            )
        ).one()
    return row.status_detail, row.resale_status_detail


def watches() -> dict[str, Watch]:
    return {
        "E1": Watch("E1", "Pulp", OWN, invalid_interval=SLOW),
        "E2": Watch("E2", "Blur", OWN, invalid_interval=SLOW),
    }


async def test_an_event_ticketmaster_does_not_know_is_polled_rarely_until_it_does(
    rig: RigBuilder,
) -> None:
    r = await rig(watches=watches(), batch_size=10)
    r.simulator.set("E2", A, RN)
    r.simulator.invalid.add("E1")

    await r.cycle_when_due()
    assert await stored_detail(r, "E1") == (INVALID_EVENT_ID, INVALID_EVENT_ID)
    assert await r.interval_of("E1") == OWN, "once may be a slip: still at its own interval"

    await r.cycle_when_due()
    assert await r.interval_of("E1") == SLOW, "twice in a row: polled every hour"
    assert await r.interval_of("E2") == OWN, "the other events keep theirs"

    started = r.clock()
    asked = r.simulator.times_asked.copy()
    while r.clock() < started + 2 * SLOW:
        await r.cycle_when_due()
    assert r.simulator.times_asked["E1"] - asked["E1"] <= 3
    assert r.simulator.times_asked["E2"] - asked["E2"] > 100

    # A restart keeps it slow: the database says what Ticketmaster said.
    await Repository(r.engine).sync_watchlist(watches().values(), 10, r.clock(), new_id)
    assert await r.interval_of("E1") == SLOW

    r.simulator.invalid.discard("E1")
    r.simulator.set("E1", A, RN)
    asked = r.simulator.times_asked.copy()
    while r.simulator.times_asked["E1"] == asked["E1"]:
        await r.cycle_when_due()
    assert r.clock() - started <= 3 * SLOW
    assert await r.interval_of("E1") == OWN, "back to its own interval at the first answer"
    assert await stored_detail(r, "E1") == (None, None)


async def test_an_accepted_unknown_notices_a_new_reason(rig: RigBuilder) -> None:
    r = await rig(watches=watches(), batch_size=10)
    r.simulator.set("E1", U, RN)
    r.simulator.set("E2", A, RN)
    for _ in range(4):  # UNKNOWN is accepted after three in a row
        await r.cycle_when_due()
    assert await stored_detail(r, "E1") == (None, None)

    r.simulator.markets["E1"] = "FR"
    await r.cycle_when_due()
    assert await stored_detail(r, "E1") == ("NOT_SUPPORTED", "NOT_SUPPORTED")


async def test_why_unknown_is_shown_in_the_api_the_dashboard_and_the_cli(
    make_config: ConfigFactory, tmp_path: Path
) -> None:
    simulator = Simulator(api_key=API_KEY)
    simulator.set("E1", A, RN)
    simulator.invalid.add("E2")
    async with serve(simulator) as upstream:
        data = {
            "ticketmaster": {"base_url": upstream, "api_key": API_KEY, "requests_per_second": 100},
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"},
            "polling": {"interval": "1s", "invalid_interval": "1h"},
            "server": {"port": 0},
            "events": [{"id": "E1"}, {"id": "E2", "name": "Typo"}],
        }
        path = tmp_path / "monitor.yaml"
        path.write_text(yaml.safe_dump(data))
        async with (
            Monitor(make_config(**data)) as monitor,
            aiohttp.ClientSession(monitor.url) as http,
        ):

            async def explained() -> bool:
                async with http.get("/api/events/E2") as response:
                    event = (await response.json())["event"]
                return (event["status_detail"], event["resale_status_detail"]) == (
                    INVALID_EVENT_ID,
                    INVALID_EVENT_ID,
                )

            await eventually(explained, what="E2's answer explained")
            async with http.get("/api/events/E1") as response:
                assert (await response.json())["event"]["status_detail"] is None
            async with http.get("/") as response:
                page = await response.text()
            assert "Ticketmaster does not know this event" in page
            async with http.get("/events/E2") as response:
                assert "Ticketmaster does not know this event" in await response.text()
            code, out, err = await run_cli("status", "--config", str(path))
            assert code == 0, err
            assert "E2: Ticketmaster does not know this event (INVALID_EVENT_ID)" in out
            assert "E1:" not in out
