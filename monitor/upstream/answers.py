"""How the Inventory Status API's answers are read: a 200's JSON matched to the IDs asked
for (an item twice, for an event not asked for, or without an ID is not a reading), the
rate headers, and what every other status means, in words that name the endpoint."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from yarl import URL

from monitor.backoff import retry_after_seconds
from monitor.errors import InvalidApiKey, RateLimited, RequestTooLarge, UpstreamError
from monitor.metrics import Metrics
from monitor.models import Answer
from monitor.redact import redact

logger = logging.getLogger(__name__)

Found = dict[str, dict[str, Any]]
"""An answer: each requested event's item, by event ID, as the JSON held it (a mapping
whose `status` and `resaleStatus` may hold anything). Items for events not asked for, and
events answered twice, are left out. Not turned into `Answer`s here: most items only
confirm what is known, and the poller's fast path reads them as they are."""

MAX_ANSWER_BYTES = 16 * 1024 * 1024
"""Larger answers are failed requests: 1,000 IDs answer in about 100 KB, a page of
Discovery in less than a megabyte."""
MAX_RESET_AHEAD = 25 * 3600.0
"""A quota resets daily: a reset further ahead than this is a garbled header."""
_TOO_LARGE = re.compile(r"too (large|long|big)|toobig|more than \d+ bytes", re.IGNORECASE)
"""What a 400 says when the request line was too long for a server on the way: Apigee's
`protocol.http.TooBigLine`, a proxy's "Request-URI too long", or aiohttp's "Got more
than 8190 bytes"."""
_INT64_MAX = 2**63 - 1


class AnswerReader:
    def __init__(
        self,
        endpoint: str,
        clock: Callable[[], float],
        *,
        max_retry_after: float,
        metrics: Metrics | None,
    ) -> None:
        self._endpoint = endpoint
        self._clock = clock
        self._max_retry_after = max_retry_after
        self._metrics = metrics
        self._warned: set[str] = set()
        """Odd headers and answers already reported, by what was odd about them."""

    def refusal(self, status: int, headers: Any, body: bytes, *, carried: int) -> UpstreamError:
        """What an answer other than 200 means."""
        fault, code = fault_of(body)
        what = f"{self._endpoint} answered HTTP {status}"
        detail = f": {fault}" if fault else ""
        if 300 <= status < 400:
            return UpstreamError(
                f"{what} (a redirect to {_location(headers)}; redirects are not followed)"
            )
        said = f"{fault} {code}" if fault else body[:500].decode("utf-8", "replace")
        if status == 414 or (status == 400 and _TOO_LARGE.search(said)):
            return RequestTooLarge(
                f"{what}{detail} (the URL is too long)", status=status, carried=carried
            )
        if status == 401:
            return InvalidApiKey(
                f"{what}{detail} (is the API key valid for the Inventory Status API?)"
            )
        if status == 429:
            return self._rate_limited(f"{what}{detail}", headers, code)
        return UpstreamError(
            f"{what}{detail or _snippet(body)}", status=status, retryable=status >= 500
        )

    def _rate_limited(self, message: str, headers: Any, code: str | None) -> RateLimited:
        """A 429: the daily quota used up, or the spike arrest (too many at once)."""
        quota = "QuotaViolation" in (code or "") or headers.get("Rate-Limit-Available") == "0"
        if self._metrics is not None:
            self._metrics.rate_limited.labels("quota" if quota else "spike_arrest").inc()
        return RateLimited(message, retry_after=self._retry_after(headers, quota), quota=quota)

    def parse(self, body: bytes, event_ids: Sequence[str]) -> Found:
        """The items of a 200 answer, by the event IDs asked for."""
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                f"{self._endpoint} answered with a body that is not JSON{_snippet(body)}"
            ) from None
        if not isinstance(items, list):
            raise UpstreamError(
                f"{self._endpoint} answered with JSON that is not an array{_snippet(body)}"
            )
        found, doubled = self._match(items, set(event_ids))
        if doubled:
            # Which of two answers is right cannot be known: neither is a reading.
            self._warn_once(
                "doubled",
                "%s: the answer holds %s more than once; such events count as not polled "
                "(reported once)",
                self._endpoint,
                ", ".join(sorted(doubled)[:5]),
            )
        if event_ids and not found:
            raise UpstreamError(
                f"{self._endpoint} answered without any of the {len(event_ids)} events asked for"
            )
        for event_id in doubled:
            del found[event_id]
        return found

    def _match(self, items: list[Any], requested: set[str]) -> tuple[Found, set[str]]:
        """The first item for each requested event, and the events answered twice."""
        with contextlib.suppress(TypeError, KeyError):
            # The usual answer, checked at C speed: one object for each event asked for
            # (only strings are among the IDs asked for).
            found: Found = {item["eventId"]: item for item in items}
            if len(found) == len(items) and found.keys() <= requested:
                return found, set()
        found = {}
        doubled: set[str] = set()
        malformed = strangers = 0
        for item in items:
            event_id = item.get("eventId") if isinstance(item, dict) else None
            if not isinstance(event_id, str):
                malformed += 1
            elif event_id not in requested:
                strangers += 1
            elif event_id in found:
                doubled.add(event_id)
                if Answer.of(event_id, found[event_id]) != Answer.of(event_id, item):
                    self._warn_once(
                        "conflict",
                        "%s: the answer holds conflicting values for %s (reported once)",
                        self._endpoint,
                        event_id,
                    )
            else:
                found[event_id] = item
        if malformed or strangers:
            logger.warning(
                "%s: ignored %d answer items without a valid eventId and %d for events "
                "that were not asked for",
                self._endpoint,
                malformed,
                strangers,
            )
        return found, doubled

    def _warn_once(self, what: str, message: str, *args: object) -> None:
        if what not in self._warned:
            self._warned.add(what)
            logger.warning(message, *args)

    def _retry_after(self, headers: Any, quota: bool) -> float | None:
        """Seconds to wait, from Retry-After, or for a quota refusal from Rate-Limit-Reset;
        never beyond what the settings allow (a retry's `max`, a day for the quota)."""
        now = self._clock()
        retry_after = retry_after_seconds(headers.get("Retry-After"), now)
        if retry_after is not None:
            return min(retry_after, self._max_retry_after)
        reset = self._header(headers, "Rate-Limit-Reset")
        if quota and reset is not None:
            return min(max(0.0, reset / 1000 - now), MAX_RESET_AHEAD)
        return None

    def quota_headers(self, headers: Any) -> tuple[int | None, int | None, float | None]:
        """Rate-Limit (the quota), Rate-Limit-Available and Rate-Limit-Reset (epoch ms), as
        (limit, available, reset time in epoch seconds); None for what is absent or odd."""
        reset = self._header(headers, "Rate-Limit-Reset")
        reset_at = None if reset is None else min(reset / 1000, self._clock() + MAX_RESET_AHEAD)
        return (
            self._header(headers, "Rate-Limit"),
            self._header(headers, "Rate-Limit-Available"),
            reset_at,
        )

    def _header(self, headers: Any, name: str) -> int | None:
        """A rate header as a count: a whole number from 0 to 2^63-1, else ignored."""
        text = headers.get(name)
        if text is None:
            return None
        value = _count(text)
        if value is None:
            self._warn_once(
                name,
                "%s: ignored the header %s: %r is not a count (reported once)",
                self._endpoint,
                name,
                text[:40],
            )
        return value


def _count(text: str) -> int | None:
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit() or len(stripped) > 19:
        return None
    value = int(stripped)
    return value if value <= _INT64_MAX else None


def _location(headers: Any) -> str:
    location = headers.get("Location")
    if not location:
        return "nowhere"
    parts = URL(location)
    return str(parts.with_query(None).with_fragment(None)) if parts.is_absolute() else "a path"


def fault_of(body: bytes) -> tuple[str | None, str | None]:
    """The `faultstring` and `errorcode` of an Apigee fault body, when it is one."""
    try:
        data = orjson.loads(body)
        fault = data["fault"]
        return str(fault.get("faultstring")), str(fault.get("detail", {}).get("errorcode"))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None, None


def _snippet(body: bytes) -> str:
    text = " ".join(body[:200].decode("utf-8", "replace").split())
    return f": {redact(text)!r}" if text else " (empty body)"
