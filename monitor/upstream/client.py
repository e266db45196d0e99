"""Client for Ticketmaster's Inventory Status API: one request per batch, answers validated.

Every failure becomes an UpstreamError whose message is safe to log: the API key rides in
the query string, so no URL with a query and no aiohttp exception text leaves this module
unredacted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import orjson
from yarl import URL

from monitor import USER_AGENT
from monitor.backoff import retry_after_seconds
from monitor.errors import InvalidApiKey, RateLimited, UpstreamError
from monitor.metrics import Metrics
from monitor.models import Answer
from monitor.redact import redact
from monitor.upstream.health import Upstream
from monitor.upstream.ratelimit import TokenBucket

logger = logging.getLogger(__name__)

AVAILABILITY_PATH = "/inventory-status/v1/availability"


class InventoryClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        timeout: float,
        *,
        limiter: TokenBucket | None = None,
        upstream: Upstream | None = None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self._session = session
        self._metrics = metrics
        self._limiter = limiter
        self._upstream = upstream
        self._clock = clock
        self._endpoint = URL(base_url.rstrip("/") + AVAILABILITY_PATH)
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    @property
    def endpoint(self) -> str:
        """The endpoint without query string: what messages may show."""
        return str(self._endpoint)

    async def fetch(self, event_ids: Sequence[str]) -> list[Answer]:
        """The answer's items for the requested events, in answer order, first one per ID.

        Raises UpstreamError (or a subclass) when the request as a whole failed, and Held
        when no request may go out now.
        """
        if self._limiter is not None:
            await self._limiter.acquire()
        if self._upstream is None:
            return await self._request(event_ids)
        await self._upstream.admit()
        try:
            answers = await self._request(event_ids)
        except UpstreamError as exc:
            self._upstream.failed(exc)
            raise
        except BaseException:
            self._upstream.abandoned()
            raise
        self._upstream.succeeded()
        return answers

    async def _request(self, event_ids: Sequence[str]) -> list[Answer]:
        url = self._endpoint.with_query(events=",".join(event_ids), apikey=self._api_key)
        started = time.monotonic()
        try:
            async with self._session.get(
                url, timeout=self._timeout, headers={"User-Agent": USER_AGENT}
            ) as response:
                body = await response.read()
                status, headers = response.status, response.headers
        except TimeoutError:
            self._observe_latency(started)
            raise UpstreamError(
                f"no answer from {self.endpoint} within {self._timeout.total:g}s"
            ) from None
        except aiohttp.ClientError as exc:
            self._observe_latency(started)
            # aiohttp puts the full URL, API key included, into its messages.
            raise UpstreamError(
                f"request to {self.endpoint} failed: {type(exc).__name__}: {redact(str(exc))}"
            ) from None
        seconds = self._observe_latency(started)
        logger.debug(
            "%d events requested, HTTP %d in %.0f ms", len(event_ids), status, seconds * 1000
        )
        if self._upstream is not None:
            self._upstream.observe_quota(*_quota_headers(headers))
        if status != 200:
            raise self._http_error(status, headers, body)
        return self._parse(body, event_ids)

    def _observe_latency(self, started: float) -> float:
        seconds = time.monotonic() - started
        if self._metrics is not None:
            self._metrics.request_seconds.observe(seconds)
        return seconds

    def _http_error(self, status: int, headers: Any, body: bytes) -> UpstreamError:
        fault, code = _fault(body)
        what = f"{self.endpoint} answered HTTP {status}"
        detail = f": {fault}" if fault else ""
        if status == 401:
            return InvalidApiKey(
                f"{what}{detail} (is the API key valid for the Inventory Status API?)"
            )
        if status == 429:
            quota = "QuotaViolation" in (code or "") or headers.get("Rate-Limit-Available") == "0"
            if self._metrics is not None:
                self._metrics.rate_limited.labels("quota" if quota else "spike_arrest").inc()
            return RateLimited(
                f"{what}{detail}",
                retry_after=_retry_after(headers, quota, self._clock()),
                quota=quota,
            )
        return UpstreamError(
            f"{what}{detail or _snippet(body)}", status=status, retryable=status >= 500
        )

    def _parse(self, body: bytes, event_ids: Sequence[str]) -> list[Answer]:
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                f"{self.endpoint} answered with a body that is not JSON{_snippet(body)}"
            ) from None
        if not isinstance(items, list):
            raise UpstreamError(
                f"{self.endpoint} answered with JSON that is not an array{_snippet(body)}"
            )
        requested = set(event_ids)
        unanswered = set(requested)
        answers: list[Answer] = []
        malformed = strangers = 0
        for item in items:
            event_id = item.get("eventId") if isinstance(item, dict) else None
            if not isinstance(event_id, str):
                malformed += 1
            elif event_id in unanswered:
                unanswered.discard(event_id)
                answers.append(Answer(event_id, item.get("status"), item.get("resaleStatus")))
            elif event_id not in requested:
                strangers += 1
        if malformed or strangers:
            logger.warning(
                "%s: ignored %d answer items without a valid eventId and %d for events "
                "that were not asked for",
                self.endpoint,
                malformed,
                strangers,
            )
        return answers


def _fault(body: bytes) -> tuple[str | None, str | None]:
    """The `faultstring` and `errorcode` of an Apigee fault body, when it is one."""
    try:
        data = orjson.loads(body)
        fault = data["fault"]
        return str(fault.get("faultstring")), str(fault.get("detail", {}).get("errorcode"))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None, None


def _retry_after(headers: Any, quota: bool, now: float) -> float | None:
    """Seconds to wait, from Retry-After, or for a quota refusal from Rate-Limit-Reset."""
    retry_after = retry_after_seconds(headers.get("Retry-After"), now)
    if retry_after is not None:
        return retry_after
    reset = _integer(headers.get("Rate-Limit-Reset"))
    if quota and reset is not None:
        return max(0.0, reset / 1000 - now)
    return None


def _quota_headers(headers: Any) -> tuple[int | None, int | None, float | None]:
    """Rate-Limit (the quota), Rate-Limit-Available and Rate-Limit-Reset (epoch ms), as
    (limit, available, reset time in epoch seconds); None for what is absent or garbled."""
    reset = _integer(headers.get("Rate-Limit-Reset"))
    return (
        _integer(headers.get("Rate-Limit")),
        _integer(headers.get("Rate-Limit-Available")),
        None if reset is None else reset / 1000,
    )


def _integer(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def _snippet(body: bytes) -> str:
    text = " ".join(body[:200].decode("utf-8", "replace").split())
    return f": {redact(text)!r}" if text else " (empty body)"
