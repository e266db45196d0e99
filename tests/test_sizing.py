"""The request size: learnt from what passes, halved on a refusal, kept across restarts."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from yarl import URL

from monitor.app import Monitor
from monitor.cli.history import print_status
from monitor.devtools.faults import ScriptedFault
from monitor.devtools.simulator import Simulator, serve
from monitor.models import Health
from monitor.polling.watchlist import Watch
from monitor.store.engine import create_engine
from monitor.store.repository import Repository
from monitor.upstream.inventory import availability_endpoint
from monitor.upstream.ratelimit import TokenBucket
from monitor.upstream.sizing import API_MAX, GROW_AFTER, START, RequestSize
from tests.conftest import API_KEY, ConfigFactory, FakeClock
from tests.rig import RigBuilder
from tests.support import eventually


def url_bytes_without_ids(base_url: str) -> int:
    """The length of a request's URL before its first ID."""
    endpoint = URL(f"{base_url}/inventory-status/v1/availability")
    return len(str(endpoint.with_query(events="", apikey=API_KEY)))


def grown(size: RequestSize) -> int:
    for _ in range(GROW_AFTER):
        size.passed(size.size)
    return size.size


@pytest.mark.unit
def test_a_learnt_size_starts_small_and_grows_after_full_requests_pass() -> None:
    size = RequestSize.of(None, 8000)
    assert size.size == START
    for _ in range(GROW_AFTER - 1):
        assert not size.passed(START)
    assert not size.passed(START // 2), "a request that was not full proves nothing"
    assert size.size == START
    assert grown(size) == 300
    assert [grown(size) for _ in range(4)] == [450, 675, API_MAX, API_MAX]


@pytest.mark.unit
def test_requests_of_whole_batches_count_as_full_when_no_batch_more_fits() -> None:
    """Claims take batches of 100 whole: at 450, a request of 400 is as full as it gets,
    and the size must still grow to the most the API takes."""
    size = RequestSize.of(None, 8000, learnt=450, grain=100)
    for _ in range(GROW_AFTER):
        size.passed(400)
    assert size.size == 675
    for _ in range(GROW_AFTER):
        size.passed(575)
    assert size.size == 675, "a request with room for a whole batch more was not full"
    for _ in range(GROW_AFTER):
        size.passed(600)
    assert size.size == API_MAX


@pytest.mark.unit
def test_a_refusal_halves_the_size_and_growth_then_stops_short_of_it() -> None:
    size = RequestSize.of(None, 8000)
    assert size.refused(200)
    assert size.size == 100
    assert grown(size) == 150, "half way to the size refused"
    assert grown(size) == 175
    assert size.refused(175)
    assert size.size == 150, "back to the most that went through, not to half"
    sizes = [grown(size) for _ in range(8)]
    assert sizes[:3] == [162, 168, 171]
    assert sizes[-1] == 174, "settled just under the smallest size refused"


@pytest.mark.unit
def test_requests_cut_before_the_size_grew_say_nothing_of_the_new_size() -> None:
    size = RequestSize.of(None, 8000, learnt=300)
    for _ in range(GROW_AFTER):
        size.passed(300, built_at=300)
    assert size.size == 450
    for _ in range(GROW_AFTER):
        size.passed(300, built_at=300)
    assert size.size == 450, "requests of 300 cut at 300 prove nothing of 450"
    assert size.passed_at == 300


async def test_requests_waiting_for_their_turn_go_out_at_the_size_a_refusal_left(
    rig: RigBuilder, caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    """Four requests of 300 wait for the rate's slots (20 a second, in real time: each waits
    for the answer before it) when the first is refused: the other three go out at the
    halved size instead of being refused in turn."""
    ids = [f"E{i:04d}" for i in range(1200)]
    size = RequestSize.of(None, 100_000, learnt=300)
    limiter = TokenBucket(20.0)
    r = await rig(
        watches={i: Watch(i, None, 10.0) for i in ids},
        batch_size=100,
        max_in_flight=4,
        size=size,
        limiter=limiter,
    )
    await r.poller.run_cycle()  # the upstream answers: requests go out side by side now
    r.simulator.max_url_bytes = url_bytes_without_ids(r.simulator_url) + 262 * 6 - 1
    clock.advance(10.0)
    await r.poller.run_cycle()
    refusals = [m for m in (rec.getMessage() for rec in caplog.records) if "refused" in m]
    assert len(refusals) == 1, refusals
    assert r.simulator.too_long == 1
    assert size.size == 150


@pytest.mark.unit
def test_a_burst_of_refusals_of_requests_built_before_the_first_halves_the_size_once() -> None:
    size = RequestSize.of(None, 8000, learnt=300)
    for _ in range(4):  # four requests of 300 IDs were in flight when the limit was met
        assert size.refused(300)
    assert size.size == 150
    assert size.refused(150), "a request built at the new size is a new lesson"
    assert size.size == 75


@pytest.mark.unit
def test_one_id_too_many_is_a_real_failure() -> None:
    size = RequestSize.of(None, 8000)
    assert not size.refused(1)


@pytest.mark.unit
def test_a_pinned_size_never_grows() -> None:
    size = RequestSize.of(50, 8000)
    assert grown(size) == 50


@pytest.mark.unit
def test_a_learnt_size_is_taken_up_again() -> None:
    assert RequestSize.of(None, 8000, learnt=675).size == 675
    assert RequestSize.of(None, 8000, learnt=5000).size == API_MAX
    assert RequestSize.of(300, 8000, learnt=675).size == 300, "a number pins it"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("ids", "size", "max_url_bytes", "expected"),
    [
        pytest.param(["abcd"] * 10, 200, 1000, 10, id="all fit"),
        pytest.param(["abcd"] * 10, 4, 1000, 4, id="no more than the size"),
        pytest.param(["abcd"] * 10, 200, 100 + 4 + 5 * 2, 3, id="no longer URL than allowed"),
        pytest.param(["abcdefgh"], 200, 100, 1, id="one at least"),
    ],
)
def test_take(ids: list[str], size: int, max_url_bytes: int, expected: int) -> None:
    assert RequestSize(size, max_url_bytes=max_url_bytes).take(ids, 100) == expected


async def test_a_proxy_that_refuses_long_urls_halves_the_size_then_it_grows_again(
    rig: RigBuilder,
) -> None:
    ids = [f"E{i:04d}" for i in range(600)]
    watches = {i: Watch(i, None, 10.0) for i in ids}
    size = RequestSize.of(None, 100_000)
    r = await rig(watches=watches, batch_size=100, max_in_flight=1, size=size)
    fixed = url_bytes_without_ids(r.simulator_url)
    r.simulator.max_url_bytes = fixed + 160 * 6  # 160 IDs of five characters, and commas
    await r.poller.run_cycle()
    assert r.simulator.too_long == 1, "200 IDs were refused once"
    assert size.size == 100
    read = len(r.simulator.polled_at)
    await r.poller.run_cycle()  # at once: requests cut at 200 went back, to be cut again
    assert r.simulator.too_long == 1
    assert len(r.simulator.polled_at) == 600 > read, "every event read, none in a sliver"
    assert r.simulator.requests == 1 + 6, "the refused request, then six of 100"
    for _ in range(2):
        r.clock.advance(10.0)
        await r.poller.run_cycle()
    assert size.size == 150, "ten full requests passed: half way back to 200"
    assert r.simulator.too_long == 1
    failed = r.metrics.registry.get_sample_value(
        "inventory_monitor_polls_total", {"outcome": "failed"}
    )
    assert failed == 0, "a refused request is no failed poll"
    assert r.upstream.status.health is Health.OK


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(
            orjson.dumps(
                {"fault": {"faultstring": "Request line too long", "detail": {"errorcode": "x"}}}
            ).decode(),
            "application/json",
            id="an Apigee fault",
        ),
        pytest.param(
            "400, message: Got more than 8190 bytes when reading", "text/plain", id="aiohttp"
        ),
    ],
)
async def test_a_400_saying_the_request_is_too_large_halves_it_too(
    rig: RigBuilder, body: str, content_type: str
) -> None:
    ids = [f"E{i:04d}" for i in range(8)]
    size = RequestSize.of(8, 8000)
    r = await rig(watches={i: Watch(i, None, 10.0) for i in ids}, batch_size=8, size=size)
    r.simulator.inject(ScriptedFault(400, body, content_type))
    await r.poller.run_cycle()
    assert size.size == 4
    assert len(r.simulator.polled_at) == 8
    assert r.upstream.status.health is Health.OK


async def test_any_other_400_is_a_failed_poll(rig: RigBuilder) -> None:
    size = RequestSize.of(8, 8000)
    r = await rig(watches={"E1": Watch("E1", None, 10.0)}, batch_size=8, size=size)
    r.simulator.inject(ScriptedFault(400, "bad request", "text/plain"))
    await r.poller.run_cycle()
    assert size.size == 8
    failed = r.metrics.registry.get_sample_value(
        "inventory_monitor_polls_total", {"outcome": "failed"}
    )
    assert failed == 1


async def test_the_learnt_size_is_kept_shown_and_taken_up_after_a_restart(
    make_config: ConfigFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    simulator = Simulator(api_key=API_KEY)
    async with serve(simulator) as upstream:
        simulator.max_url_bytes = len(upstream) + 100 + 150 * 6  # about 150 IDs
        config = make_config(
            ticketmaster={"base_url": upstream, "api_key": API_KEY},
            polling={"interval": "1s"},
            events=[{"id": f"E{i:04d}"} for i in range(300)],
        )
        endpoint = f"{upstream}/inventory-status/v1/availability"
        async with Monitor(config, housekeeping_every=0.05) as monitor:
            await eventually(lambda: monitor.parts.request_size.size == 100, what="a halved size")
            assert monitor.url is not None
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{monitor.url}/metrics") as response,
            ):
                text = await response.text()
            assert f'inventory_monitor_request_ids{{endpoint="{endpoint}"}} 100.0' in text
            saved = Repository(create_engine(config.database.url))
            try:

                async def kept() -> bool:
                    return await saved.load_request_size(endpoint) == 100

                await eventually(kept, what="the size kept in the database")
            finally:
                await saved.engine.dispose()
        await print_status(config)
        assert "requests: up to 100 event IDs each (learnt)" in capsys.readouterr().out
        async with Monitor(config, housekeeping_every=0.05) as again:
            assert again.parts.request_size.size == 100, "not 200 again, to be refused again"


@pytest.mark.unit
def test_a_password_in_the_base_url_is_a_secret_and_never_shown_or_stored(
    make_config: ConfigFactory,
) -> None:
    config = make_config(ticketmaster={"base_url": "https://proxy:pw-in-url-99@tm.example.com/"})
    assert "pw-in-url-99" in config.secrets()
    endpoint = availability_endpoint(config.ticketmaster.base_url)
    assert endpoint == "https://tm.example.com/inventory-status/v1/availability"


async def test_requests_settle_within_five_percent_of_what_the_url_limit_admits(
    rig: RigBuilder, caplog: pytest.LogCaptureFixture
) -> None:
    """A proxy admits URLs of 262 IDs: the learnt size ends within 5% of that, every
    request but a partition's last carries it in full, and the first burst of refusals
    (requests of 300 in flight together) halved the size once."""
    ids = [f"E{i:04d}" for i in range(3000)]
    watches = {i: Watch(i, None, 10.0) for i in ids}
    size = RequestSize.of(None, 100_000)
    r = await rig(watches=watches, batch_size=100, max_in_flight=4, size=size)
    fixed = url_bytes_without_ids(r.simulator_url)
    admitted = 262
    r.simulator.max_url_bytes = fixed + admitted * 6 - 1  # five characters and a comma each
    sizes = []
    for _ in range(60):
        await r.poller.run_cycle()
        sizes.append(size.size)
        r.clock.advance(10.0)
    assert sizes[-10:] == [sizes[-1]] * 10, "settled"
    assert admitted * 0.95 <= size.size <= admitted
    burst = [
        record.getMessage().rsplit(" ", 1)[1]
        for record in caplog.records
        if "refused a request of 300 IDs" in record.getMessage()
    ]
    assert len(burst) > 1, "several requests of 300 were in flight at the first refusal"
    assert set(burst) == {"150"}, "a burst of refusals halves the size once"
    before = r.simulator.requests
    await r.poller.run_cycle()
    assert r.simulator.requests - before == -(-3000 // size.size), "ID by ID: no room wasted"
