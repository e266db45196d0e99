from __future__ import annotations

import logging
import re
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest

from monitor.devtools.simulator import QUOTA_FAULT, spike_arrest_fault
from monitor.errors import InvalidApiKey, RateLimited, UpstreamError
from monitor.models import Answer, Quota
from monitor.redact import RedactingFilter, Redactor, redactor
from monitor.upstream.client import InventoryClient
from monitor.upstream.health import Upstream
from tests.mocking import mocked_http

KEY = "sk-live-0123456789abcdef"
BASE = "https://tm.example.com"
ENDPOINT = re.compile(r"^https://tm\.example\.com/inventory-status/v1/availability\?.*$")


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
        readings = await client.fetch(["A", "B"])
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
        item("D", "FEW_TICKETS_LEFT"),  # duplicate: the first wins
    ]
    with mocked_http() as mocked:
        mocked.get(ENDPOINT, payload=answer)
        readings = await client.fetch(["A", "B", "C", "D", "E"])
    assert readings == [
        Answer("A", "PRESALE", "TICKETS_NOT_AVAILABLE"),
        Answer("B", ["odd"], {"x": 1}),
        Answer("C", None, None),
        Answer("D", "TICKETS_AVAILABLE", "TICKETS_NOT_AVAILABLE"),
    ]
    assert "ignored 2 answer items without a valid eventId and 1 for events" in caplog.text


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
    ],
)
async def test_rate_limit_headers_feed_the_quota(headers: dict[str, str], expected: Quota) -> None:
    upstream = Upstream(clock=lambda: 1_800_000_000.0)
    async with aiohttp.ClientSession() as session:
        client = InventoryClient(session, BASE, KEY, timeout=2.0, upstream=upstream)
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
