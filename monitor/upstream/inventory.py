"""Client for Ticketmaster's Inventory Status API: requests as full as allowed, answers validated.

Every failure becomes an UpstreamError whose message is safe to log: the API key rides in
the query string, so no URL with a query and no aiohttp exception text leaves this module
unredacted.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp
from yarl import URL

from monitor import USER_AGENT
from monitor.errors import Held, RequestTooLarge, UpstreamError
from monitor.markets import PLAIN, RequestKind
from monitor.metrics import Metrics
from monitor.redact import redact
from monitor.upstream.answers import MAX_ANSWER_BYTES, AnswerReader, Found
from monitor.upstream.health import Upstream
from monitor.upstream.ratelimit import Limiter
from monitor.upstream.sizing import RequestSize

logger = logging.getLogger(__name__)

AVAILABILITY_PATH = "/inventory-status/v1/availability"
LEGACY_PATH = AVAILABILITY_PATH + "/legacy"
"""The endpoint for legacy (16 hex digit) event IDs."""
DEFAULT_MAX_URL_BYTES = 8000
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Reply:
    found: Found | None
    """None when the answer was byte for byte the one whose digest was given."""
    digest: bytes | None
    """The answer's digest, when it took a single request."""


class InventoryClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        timeout: float,
        *,
        limiter: Limiter | None = None,
        upstream: Upstream | None = None,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        max_retry_after: float = 300.0,
        size: RequestSize | None = None,
    ) -> None:
        self._session = session
        self._max_answer_bytes = max_answer_bytes
        self._metrics = metrics
        self._limiter = limiter
        self._upstream = upstream
        self._clock = clock
        self._endpoint = URL(base_url.rstrip("/") + AVAILABILITY_PATH)
        self._legacy_endpoint = URL(base_url.rstrip("/") + LEGACY_PATH)
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.size = size or RequestSize.of(None, DEFAULT_MAX_URL_BYTES)
        """How many IDs a request carries; shared by the clients of one endpoint."""
        # The longest request line of all: legacy IDs of a UK event.
        longest = self._legacy_endpoint.with_query(events="", apikey=api_key, region="UK")
        self._fixed_url_bytes = len(str(longest))
        self._answers = AnswerReader(
            self.endpoint, clock, max_retry_after=max_retry_after, metrics=metrics
        )
        self._show_size()

    @property
    def endpoint(self) -> str:
        """The endpoint without query string or password: what messages may show."""
        return str(self._endpoint.with_user(None))

    async def fetch(self, event_ids: Sequence[str], kind: RequestKind = PLAIN) -> Found:
        """The answer's item for each requested event it holds, by event ID (see `Found`).

        The IDs go out in as few requests as the request size allows (see `sizing`); a
        request refused as too large is sent again at once, split in halves.

        Raises UpstreamError (or a subclass) when a request failed as a whole, and Held
        when no request may go out now.
        """
        return (await self.fetch_reply(event_ids, kind=kind)).found or {}

    async def fetch_reply(
        self,
        event_ids: Sequence[str],
        same_as: bytes | None = None,
        *,
        kind: RequestKind = PLAIN,
        built_at: int | None = None,
    ) -> Reply:
        """`fetch`, and the answer's digest when it took one request. When that digest is
        `same_as`, the answer is byte for byte one seen before and is not parsed again.
        `kind` says which endpoint takes the IDs and which region they are in; `built_at`
        the request size the caller cut `event_ids` to."""
        answers: Found = {}
        pending = list(event_ids)
        digest: bytes | None = None
        whole = False
        while pending:
            try:
                count, found, digest = await self._fetch_next(pending, event_ids, same_as, kind)
                whole = count == len(event_ids)
            except RequestTooLarge as exc:
                if not self.size.refused(exc.carried):
                    raise UpstreamError(str(exc), status=exc.status) from None
                logger.warning(
                    "%s refused a request of %d IDs as too large; requests now carry at most %d",
                    self.endpoint,
                    exc.carried,
                    self.size.size,
                )
                self._show_size()
                continue
            if self.size.passed(count, built_at):
                logger.info("%s: requests now carry up to %d IDs", self.endpoint, self.size.size)
                self._show_size()
            if found is None:
                return Reply(None, digest)
            answers.update(found)
            del pending[:count]
        return Reply(answers, digest if whole else None)

    def sendable(self, seconds: float) -> int:
        """How many requests the pacing lets out within `seconds` (at least one)."""
        return self._limiter.within(seconds) if self._limiter is not None else 1 << 30

    def capacity(self, id_bytes: int) -> int:
        """The most IDs of up to `id_bytes - 1` characters one request carries now."""
        room = self.size.max_url_bytes - self._fixed_url_bytes + 1  # no comma after the last
        return max(1, min(self.size.size, room // id_bytes))

    def _show_size(self) -> None:
        if self._metrics is not None:
            self._metrics.request_ids.labels(self.endpoint).set(self.size.size)

    async def _fetch_next(
        self,
        pending: Sequence[str],
        event_ids: Sequence[str],
        same_as: bytes | None,
        kind: RequestKind,
    ) -> tuple[int, Found | None, bytes]:
        """One request for as many of `pending` as the request size allows once its turn
        has come: a refusal while it waited shrinks it before it goes, not after. Returns
        how many it carried, the answers (None when the same as `same_as`) and their digest."""

        async def send() -> tuple[int, Found | None, bytes]:
            await self._paced()
            count = self.size.take(pending, self._fixed_url_bytes)
            same = same_as if count == len(event_ids) else None
            found, digest = await self._request(pending[:count], same, kind)
            return count, found, digest

        if self._upstream is None:
            return await send()
        # Admitted first, paced second: requests held until the upstream answers again then
        # leave one slot apart, never together.
        await self._upstream.admit()
        try:
            answers = await send()
        except RequestTooLarge:
            self._upstream.abandoned()  # the API is not failing; the request was too long
            raise
        except UpstreamError as exc:
            self._upstream.failed(exc)
            raise
        except Held as held:  # the replicas sharing the key have spent its quota
            self._upstream.abandoned()
            self._upstream.hold(held.until)
            raise
        except BaseException:
            self._upstream.abandoned()
            raise
        self._upstream.succeeded()
        return answers

    async def _paced(self) -> None:
        if self._limiter is not None:
            await self._limiter.acquire()

    async def _request(
        self, event_ids: Sequence[str], same_as: bytes | None, kind: RequestKind
    ) -> tuple[Found | None, bytes]:
        endpoint = self._legacy_endpoint if kind.legacy else self._endpoint
        query = {"events": ",".join(event_ids), "apikey": self._api_key}
        if kind.region is not None:
            query["region"] = kind.region
        url = endpoint.with_query(query)
        started = time.monotonic()
        try:
            # Never follow a redirect: its target is not the API, and it may carry the key.
            async with self._session.get(
                url,
                timeout=self._timeout,
                headers={"User-Agent": USER_AGENT},
                allow_redirects=False,
            ) as response:
                status, headers = response.status, response.headers
                body = await self._read(response)
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
        limit, available, reset_at = self._answers.quota_headers(headers)
        if self._upstream is not None:
            self._upstream.observe_quota(limit, available, reset_at)
        if self._limiter is not None:
            await self._limiter.observe_quota(available, reset_at)
        if status != 200:
            raise self._answers.refusal(status, headers, body, carried=len(event_ids))
        digest = hashlib.sha256(body).digest()  # SHA-NI: twice as fast as BLAKE2 here
        if digest == same_as:
            return None, digest
        return self._answers.parse(body, event_ids), digest

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        """The body, read in chunks and never more than `max_answer_bytes` of it."""
        limit = self._max_answer_bytes
        length = response.content_length
        if length is not None and length <= limit and "Content-Encoding" not in response.headers:
            return await response.read()  # framed by its length: no more can arrive
        too_large = UpstreamError(
            f"{self.endpoint} answered with a body over {limit:,} bytes; it is not read"
        )
        if (length or 0) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _observe_latency(self, started: float) -> float:
        seconds = time.monotonic() - started
        if self._metrics is not None:
            self._metrics.request_seconds.observe(seconds)
        return seconds


def availability_endpoint(base_url: str) -> str:
    """Where availability requests go, without the query and without any user or password
    in the address: what may be shown, logged and stored (a learnt request size is kept
    under it)."""
    return str(URL(base_url.rstrip("/") + AVAILABILITY_PATH).with_user(None))
