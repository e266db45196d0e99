"""Client for Ticketmaster's Discovery API: event searches and lookups, paged within the
API's limits, with the same key, pacing and redaction as the Inventory Status client."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
from yarl import URL

from monitor import USER_AGENT
from monitor.backoff import retry_after_seconds
from monitor.discovery.details import (
    Attraction,
    EventDetails,
    ShapeError,
    parse_attraction,
    parse_event,
)
from monitor.errors import RateLimited, UpstreamError
from monitor.redact import redact
from monitor.upstream.answers import MAX_ANSWER_BYTES, fault_of
from monitor.upstream.quota import MAX_DEPTH, MAX_PAGE_SIZE
from monitor.upstream.ratelimit import Limiter

ATTRACTIONS_PATH = "/discovery/v2/attractions.json"
SEARCH_PATH = "/discovery/v2/events.json"
EVENT_PATH = "/discovery/v2/events/{}.json"


class DiscoveryRefused(UpstreamError):
    """The key has no access to the Discovery API (401 or 403). Polling goes on without it."""


FILTERS = (
    "keyword",
    "attraction_id",
    "venue_id",
    "country_code",
    "city",
    "classification",
    "dma_id",
)
"""What a search filters on, as `Search` and a `discover:` entry both name them."""


@dataclass(frozen=True, slots=True)
class Search:
    """A Discovery search, in the API's own filters."""

    keyword: str | None = None
    attraction_id: str | None = None
    venue_id: str | None = None
    country_code: str | None = None
    city: str | None = None
    classification: str | None = None
    dma_id: str | None = None
    starts_after: datetime | None = None
    starts_before: datetime | None = None
    ids: tuple[str, ...] = ()

    def params(self) -> dict[str, str]:
        named = {
            "keyword": self.keyword,
            "attractionId": self.attraction_id,
            "venueId": self.venue_id,
            "countryCode": self.country_code,
            "city": self.city,
            "classificationName": self.classification,
            "dmaId": self.dma_id,
            "startDateTime": _stamp(self.starts_after),
            "endDateTime": _stamp(self.starts_before),
            "id": ",".join(self.ids) or None,
        }
        return {key: value for key, value in named.items() if value}


@dataclass(frozen=True, slots=True)
class Results:
    events: tuple[EventDetails, ...]
    total: int
    """How many events match, by Discovery's count."""
    malformed: int = 0
    """Items left out because they were not events (no id)."""
    cut_by_depth: bool = False
    """True when Discovery's paging limit, not `most`, stopped the paging."""


@dataclass
class _Page:
    events: list[EventDetails] = field(default_factory=list)
    total: int = 0
    pages: int = 0
    malformed: int = 0


class DiscoveryClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        timeout: float,
        *,
        limiter: Limiter | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self._session = session
        self._base = URL(base_url.rstrip("/"))
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._limiter = limiter
        self._max_answer_bytes = max_answer_bytes
        self.requests = 0
        """Requests made: each one spends the key's quota like a poll."""

    async def search(self, search: Search, most: int) -> Results:
        """Up to `most` events matching `search`, soonest first, in as few pages as the
        API allows; never deeper than it pages (see `MAX_DEPTH`)."""
        size = max(1, min(most, MAX_PAGE_SIZE))
        found: list[EventDetails] = []
        malformed = 0
        total = 0
        page = 0
        while len(found) < most:
            if (page + 1) * size > MAX_DEPTH:
                return Results(tuple(found), total, malformed, cut_by_depth=True)
            answer = await self._page(search, page, size)
            found.extend(answer.events)
            malformed += answer.malformed
            total = answer.total
            page += 1
            if page >= answer.pages or not (answer.events or answer.malformed):
                break
        return Results(tuple(found[:most]), total, malformed)

    async def attractions(self, keyword: str, most: int = 20) -> tuple[Attraction, ...]:
        """Artists, teams and acts whose name matches `keyword`, most relevant first: the
        IDs that a search by attraction takes."""
        params = {"keyword": keyword, "size": str(max(1, min(most, MAX_PAGE_SIZE)))}
        data = await self._get(ATTRACTIONS_PATH, params)
        if not isinstance(data, dict):
            raise ShapeError(f"{ATTRACTIONS_PATH} answered with JSON that is not an object")
        items = _object(data.get("_embedded")).get("attractions", [])
        if not isinstance(items, list):
            raise ShapeError(
                f"{ATTRACTIONS_PATH} answered with `_embedded.attractions` that is not a list"
            )
        found = (parse_attraction(item) for item in items)
        return tuple(item for item in found if item is not None)

    async def event(self, event_id: str) -> EventDetails | None:
        """One event by its universal ID; None when Discovery does not know it."""
        data = await self._get(EVENT_PATH.format(event_id), {}, missing_ok=True)
        return None if data is None else parse_event(data)

    async def _page(self, search: Search, page: int, size: int) -> _Page:
        params = {**search.params(), "size": str(size), "page": str(page), "sort": "date,asc"}
        data = await self._get(SEARCH_PATH, params)
        if not isinstance(data, dict):
            raise ShapeError(f"{SEARCH_PATH} answered with JSON that is not an object")
        paging = _object(data.get("page"))
        items = _object(data.get("_embedded")).get("events", [])  # no `_embedded`: no hits
        if not isinstance(items, list):
            raise ShapeError(f"{SEARCH_PATH} answered with `_embedded.events` that is not a list")
        result = _Page(total=_count(paging.get("totalElements"), len(items)))
        result.pages = _count(paging.get("totalPages"), math.ceil(result.total / size))
        for item in items:
            try:
                result.events.append(parse_event(item))
            except ShapeError:
                result.malformed += 1
        return result

    async def _get(self, path: str, params: Mapping[str, str], *, missing_ok: bool = False) -> Any:
        if self._limiter is not None:
            await self._limiter.acquire()
        url = (self._base / path.lstrip("/")).with_query({**params, "apikey": self._api_key})
        self.requests += 1
        try:
            async with self._session.get(
                url,
                timeout=self._timeout,
                headers={"User-Agent": USER_AGENT},
                allow_redirects=False,
            ) as response:
                status, headers = response.status, response.headers
                body = await _read(response, self._max_answer_bytes + 1)
        except TimeoutError:
            raise UpstreamError(f"no answer from {path} within {self._timeout.total:g}s") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"request to {path} failed: {type(exc).__name__}: {redact(str(exc))}"
            ) from None
        if len(body) > self._max_answer_bytes:
            raise UpstreamError(
                f"{path} answered with a body over {self._max_answer_bytes:,} bytes"
            )
        if status == 404 and missing_ok:
            return None
        if status != 200:
            raise _http_error(path, status, headers, body)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ShapeError(f"{path} answered with a body that is not JSON") from None


async def _read(response: aiohttp.ClientResponse, most: int) -> bytes:
    """The body, or its first `most` bytes when it is longer."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= most:
            break
    return b"".join(chunks)[:most]


def _http_error(path: str, status: int, headers: Any, body: bytes) -> UpstreamError:
    fault, _ = fault_of(body)
    what = f"{path} answered HTTP {status}" + (f": {fault}" if fault else "")
    if status in (401, 403):
        return DiscoveryRefused(
            f"{what} (does the API key have access to the Discovery API?)",
            status=status,
            retryable=False,
        )
    if status == 429:
        retry_after = retry_after_seconds(headers.get("Retry-After"), datetime.now(UTC).timestamp())
        quota = headers.get("Rate-Limit-Available") == "0"
        return RateLimited(what, retry_after=retry_after, quota=quota)
    return UpstreamError(what, status=status, retryable=status >= 500)


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: object, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return default


def _stamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
