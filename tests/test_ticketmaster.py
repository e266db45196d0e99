from __future__ import annotations

import logging
import re
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest

from monitor.devtools.faults import QUOTA_FAULT, spike_arrest_fault
from monitor.errors import InvalidApiKey, RateLimited, UpstreamError
from monitor.models import Answer, Quota
from monitor.redact import RedactingFilter, Redactor, redactor
from monitor.upstream.answers import Found
from monitor.upstream.health import Upstream
from monitor.upstream.inventory import InventoryClient
from tests.mocking import mocked_http

pytestmark = pytest.mark.unit

KEY = "sk-live-0123456789abcdef"
BASE = "https://tm.example.com"
ENDPOINT = re.compile(r"^https://tm\.example\.com/inventory-status/v1/availability\?.*$")


def answers_of(found: Found) -> list[Answer]:
    return [Answer.of(event_id, item) for event_id, item in found.items()]


@pytest.fixture
async def client() -> AsyncIterator[InventoryClient]:
    redactor.add([KEY])
    async with aiohttp.ClientSession() as session:
        yield InventoryClient(session, BASE, KEY, timeout=2.0)


def item(
    event_id: str, status: object = "TICKETS_AVAILABLE", resale: object = "TICKETS_NOT_AVAILABLE"
) -> dict[str, object]:
    return {"eventId": event_id, "status": status, "resaleStatus": resale}


async def test_good_answer_is_matched_by_event_id_not_position(client: InventoryClient) -> None:
    with mocked_http() as mocked:
        mocked.get(ENDPOINT, payload=[item("B", "FEW_TICKETS_LEFT"), item("A")])
        readings = answers_of(await client.fetch(["A", "B"]))
        (_, url), *_ = mocked.requests
    assert readings == [
        Answer("B", "FEW_TICKETS_LEFT", "TICKETS_NOT_AVAILABLE"),
        Answer("A", "TICKETS_AVAILABLE", "TICKETS_NOT_AVAILABLE"),
    ]
    assert url.query["events"] == "A,B"
    assert url.query["apikey"] == KEY


async def test_questionable_items_are_sorted_out_never_a_crash(
    client: InventoryClient, caplog: pytest.LogCaptureFixture
) -> None:
    answer = [
        item("A", "PRESALE"),  # undocumented status
        item("B", ["odd"], {"x": 1}),  # wrong types
        {"eventId": "C"},  # fields missing (unsupported market)
        item("ZZZ"),  # not asked for
        {"status": "TICKETS_AVAILABLE"},  # no eventId
        "garbage",  # not an object
        item("D"),
        item("D", "FEW_TICKETS_LEFT"),  # twice, and conflicting: neither is a reading
        item("E"),
        item("E"),  # twice, the same: still not a reading
    ]
    with mocked_http() as mocked:
        mocked.get(ENDPOINT, payload=answer)
        readings = answers_of(await client.fetch(["A", "B", "C", "D", "E"]))
    assert readings == [
        Answer("A", "PRESALE", "TICKETS_NOT_AVAILABLE"),
        Answer("B", ["odd"], {"x": 1}),
        Answer("C", None, None),
    ]
    assert "ignored 2 answer items without a valid eventId and 1 for events" in caplog.text
    assert "the answer holds D, E more than once; such events count as not polled" in caplog.text
    assert caplog.text.count("conflicting values for D") == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param(
            {
                "status": 401,
                "payload": {
                    "fault": {
                        "faultstring": "Invalid ApiKey",
                        "detail": {"errorcode": "oauth.v2.InvalidApiKey"},
                    }
                },
            },
            InvalidApiKey,
            "HTTP 401: Invalid ApiKey",
            id="invalid-key",
        ),
        pytest.param(
            {
                "status": 429,
                "payload": {
                    "fault": {
                        "faultstring": "Spike arrest violation. Allowed rate : 5ps",
                        "detail": {"errorcode": "policies.ratelimit.SpikeArrestViolation"},
                    }
                },
                "headers": {"Retry-After": "1"},
            },
            RateLimited,
            "Spike arrest violation",
            id="spike-arrest",
        ),
        pytest.param(
            {
                "status": 503,
                "body": "<html><body>Service Unavailable</body></html>",
                "content_type": "text/html",
            },
            UpstreamError,
            "HTTP 503: '<html><body>Service Unavailable</body></html>'",
            id="html-5xx",
        ),
        pytest.param(
            {"status": 200, "body": '[{"eventId": "A"'},
            UpstreamError,
            "body that is not JSON",
            id="truncated-json",
        ),
        pytest.param(
            {"status": 200, "body": "<html>oops</html>"},
            UpstreamError,
            "body that is not JSON",
            id="html-200",
        ),
        pytest.param(
            {"status": 200, "payload": {"events": []}},
            UpstreamError,
            "JSON that is not an array",
            id="object-not-array",
        ),
        pytest.param(
            {"exception": aiohttp.ClientConnectionError(f"reset by {BASE}?apikey={KEY}")},
            UpstreamError,
            "ClientConnectionError",
            id="connection-reset",
        ),
        pytest.param(
            {"exception": aiohttp.ClientPayloadError("Response payload is not completed")},
            UpstreamError,
            "ClientPayloadError",
            id="payload-error",
        ),
        pytest.param({"exception": TimeoutError()}, UpstreamError, "within 2s", id="timeout"),
    ],
)
async def test_failures_are_upstream_errors_without_the_key(
    client: InventoryClient, kwargs: dict[str, object], error: type[UpstreamError], message: str
) -> None:
    with mocked_http() as mocked:
        mocked.get(ENDPOINT, **kwargs)
        with pytest.raises(error) as caught:
            await client.fetch(["A"])
    assert message in str(caught.value)
    assert KEY not in str(caught.value)
    assert caught.value.__cause__ is None


async def test_quota_violation_waits_until_the_reset(client: InventoryClient) -> None:
    with mocked_http() as mocked:
        mocked.get(
            ENDPOINT,
            status=429,
            payload=QUOTA_FAULT,
            headers={"Rate-Limit-Available": "0", "Rate-Limit-Reset": "9999999999000"},
        )
        with pytest.raises(RateLimited) as caught:
            await client.fetch(["A"])
    assert caught.value.quota
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 3600


def test_redactor_masks_secrets_and_credential_parameters() -> None:
    redact = Redactor(["hunter2-secret"])
    assert redact("pw hunter2-secret in text") == "pw *** in text"
    assert redact("GET /x?events=A&apikey=unregistered123&x=1") == "GET /x?events=A&apikey=***&x=1"
    assert (
        Redactor(["ab"])("ab stays: too short to be a secret")
        == "ab stays: too short to be a secret"
    )


def test_redacting_filter_cleans_messages_and_tracebacks() -> None:
    redactor.add([KEY])
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "url %s", (f"?apikey={KEY}",), None)
    try:
        _explode()
    except ValueError:
        record.exc_info = sys.exc_info()
    RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert KEY not in formatted
    assert "boom ***" in formatted


def _explode() -> None:
    raise ValueError(f"boom {KEY}")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            {
                "Rate-Limit": "5000",
                "Rate-Limit-Available": "4321",
                "Rate-Limit-Reset": "1800003600000",
            },
            Quota(5000, 4321, 1_800_003_600.0),
            id="all headers",
        ),
        pytest.param({}, Quota(), id="no headers"),
        pytest.param(
            {"Rate-Limit": "lots", "Rate-Limit-Available": "", "Rate-Limit-Reset": "soon"},
            Quota(),
            id="garbled headers are ignored",
        ),
        pytest.param(
            {"Rate-Limit": "-5000", "Rate-Limit-Available": "-1", "Rate-Limit-Reset": "-3"},
            Quota(),
            id="negative headers are ignored",
        ),
        pytest.param(
            {"Rate-Limit": "9" * 400, "Rate-Limit-Available": "1e3", "Rate-Limit-Reset": "٣"},
            Quota(),
            id="beyond 64 bits, exponents and other digits are ignored",
        ),
        pytest.param(
            {"Rate-Limit": "5000", "Rate-Limit-Reset": "99999999999999999"},
            Quota(5000, None, 1_800_000_000.0 + 25 * 3600),
            id="a reset at most 25 hours ahead",
        ),
    ],
)
async def test_rate_limit_headers_feed_the_quota(headers: dict[str, str], expected: Quota) -> None:
    clock = lambda: 1_800_000_000.0  # noqa: E731
    upstream = Upstream(clock=clock)
    async with aiohttp.ClientSession() as session:
        client = InventoryClient(session, BASE, KEY, timeout=2.0, upstream=upstream, clock=clock)
        with mocked_http() as mocked:
            mocked.get(ENDPOINT, payload=[item("A")], headers=headers)
            await client.fetch(["A"])
    assert upstream.status.quota == expected


async def test_spike_arrest_is_retryable_and_not_a_quota_problem(client: InventoryClient) -> None:
    with mocked_http() as mocked:
        mocked.get(
            ENDPOINT,
            status=429,
            payload=spike_arrest_fault(5),
            headers={"Rate-Limit-Available": "4000", "Retry-After": "2"},
        )
        with pytest.raises(RateLimited) as caught:
            await client.fetch(["A"])
    assert not caught.value.quota
    assert caught.value.retryable
    assert caught.value.retry_after == 2.0
    assert "Spike arrest violation" in str(caught.value)


async def test_an_answer_without_any_requested_event_is_a_failed_poll(
    client: InventoryClient,
) -> None:
    with mocked_http() as mocked:
        mocked.get(ENDPOINT, payload=[item("STRANGER")])
        with pytest.raises(UpstreamError, match="without any of the 2 events asked for"):
            await client.fetch(["A", "B"])


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirect_is_a_failed_poll_and_never_followed(
    client: InventoryClient, status: int
) -> None:
    with mocked_http() as mocked:
        mocked.get(
            ENDPOINT,
            status=status,
            headers={"Location": f"https://elsewhere.example/steal?apikey={KEY}"},
        )
        with pytest.raises(UpstreamError) as caught:
            await client.fetch(["A"])
        assert len(mocked.requests) == 1, "the redirect target is never asked"
    message = str(caught.value)
    assert f"answered HTTP {status}" in message
    assert "https://elsewhere.example/steal; redirects are not followed" in message
    assert KEY not in message


async def test_a_body_over_the_limit_is_a_failed_poll_read_no_further() -> None:
    async with aiohttp.ClientSession() as session:
        client = InventoryClient(session, BASE, KEY, timeout=2.0, max_answer_bytes=1000)
        with mocked_http() as mocked:
            mocked.get(ENDPOINT, body=b"[" + b" " * 5000 + b"]")
            with pytest.raises(UpstreamError, match="a body over 1,000 bytes"):
                await client.fetch(["A"])
            mocked.get(ENDPOINT, payload=[item("A")])
            assert answers_of(await client.fetch(["A"])) == [
                Answer("A", "TICKETS_AVAILABLE", "TICKETS_NOT_AVAILABLE")
            ]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "100000000"}, 300.0, id="clamped to the retry maximum"),
        pytest.param({"Retry-After": "12"}, 12.0, id="seconds"),
        pytest.param({"Retry-After": "nan"}, None, id="not a number"),
        pytest.param({"Retry-After": "-5"}, 0.0, id="negative is now"),
    ],
)
async def test_retry_after_is_bounded(headers: dict[str, str], expected: float | None) -> None:
    async with aiohttp.ClientSession() as session:
        client = InventoryClient(session, BASE, KEY, timeout=2.0, max_retry_after=300.0)
        with mocked_http() as mocked:
            mocked.get(ENDPOINT, status=429, payload=spike_arrest_fault(5), headers=headers)
            with pytest.raises(RateLimited) as caught:
                await client.fetch(["A"])
    assert caught.value.retry_after == expected


async def test_a_quota_reset_is_at_most_25_hours_ahead() -> None:
    now = 1_800_000_000.0
    async with aiohttp.ClientSession() as session:
        client = InventoryClient(session, BASE, KEY, timeout=2.0, clock=lambda: now)
        with mocked_http() as mocked:
            mocked.get(
                ENDPOINT,
                status=429,
                payload=QUOTA_FAULT,
                headers={"Rate-Limit-Available": "0", "Rate-Limit-Reset": "9" * 18},
            )
            with pytest.raises(RateLimited) as caught:
                await client.fetch(["A"])
    assert caught.value.retry_after == 25 * 3600
