"""A Ticketmaster-compatible Inventory Status API for the demo, the tests and the benchmark.

Same paths, parameters, JSON shape, fault bodies and rate-limit headers as the real
service. Legacy IDs (16 hex digits) answer only on the legacy endpoint and universal ones
only on the main one; an event in a UK or Irish market answers only to `region=UK`, and
one in France, Italy or Turkey never does (all of these answer UNKNOWN instead, as the
real API does). Every event ID is known: its first status comes from a hash of the seed and the
ID, so runs repeat. A seeded random walk changes statuses over time, and a small control
API under `/_sim/` lets tests set statuses, limits, latency and faults.

Limits behave like Ticketmaster's: more than `rate` requests within a second get a spike
arrest 429, and past the daily `quota` every request gets a quota 429 until the quota
resets. Faults come from a script (the next N requests) or at random (`fault_rate`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import zlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from monitor.config import Config
from monitor.devtools.catalog import Catalog, demo_events
from monitor.devtools.controls import Controls, json_answer
from monitor.devtools.faults import (
    HTML_503,
    INVALID_KEY_FAULT,
    QUOTA_FAULT,
    ScriptedFault,
    respond_with,
    spike_arrest_fault,
)
from monitor.markets import LEGACY_ID, UK_REGIONS, UNSUPPORTED_MARKETS
from monitor.models import (
    INVALID_EVENT_ID,
    ResaleStatus,
    Status,
)
from monitor.tasks import finish
from monitor.upstream.inventory import AVAILABILITY_PATH, LEGACY_PATH

logger = logging.getLogger(__name__)

MAX_EVENTS_PER_REQUEST = 1000
_WALK = (Status.TICKETS_AVAILABLE, Status.FEW_TICKETS_LEFT, Status.TICKETS_NOT_AVAILABLE)
_RESALE = (ResaleStatus.TICKETS_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE)
UNSUPPORTED = "NOT_SUPPORTED"
"""The `statusDetail` of an event in a market the API does not serve (FR, IT, TR)."""


class Simulator:
    def __init__(
        self,
        *,
        api_key: str | None = "sim-key",
        seed: int = 0,
        change_every: float | None = None,
        watched: list[str] | None = None,
        rate: float | None = None,
        quota: int | None = None,
        quota_period: float = 86400.0,
        latency: float = 0.0,
        max_url_bytes: int | None = None,
        markets: dict[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_key = api_key
        self.seed = seed
        self.change_every = change_every
        self.rate = rate
        """Requests a second before a spike arrest 429; None for no limit."""
        self.quota = quota
        """Requests per `quota_period` before a quota 429; None for no quota."""
        self.quota_period = quota_period
        self.quota_used = 0
        self.quota_reset_at = clock() + quota_period
        self.latency = latency
        self.max_url_bytes = max_url_bytes
        """Longer request URLs get a 414, as from a proxy before the API; None for no limit."""
        self.too_long = 0
        self.fault_rate = 0.0
        self.fault_pool: list[ScriptedFault] = [HTML_503]
        self.requests = 0
        self.kinds: Counter[tuple[bool, str | None]] = Counter()
        """Answered requests by endpoint (legacy or not) and `region` parameter."""
        self.asked: set[str] = set()
        """Every event ID any request has asked for."""
        self.times_asked: Counter[str] = Counter()
        """How many answered requests asked for each event ID."""
        self.polled_at: dict[str, float] = {}
        """When each event was last answered."""
        self.longest_gap = 0.0
        """The longest time between two answers for one event, since the last reset."""
        self.answered = 0
        self.requested_at: list[float] = []
        """When each availability request came in."""
        self.in_flight = 0
        """Requests received and not answered yet."""
        self.spike_arrests = 0
        self.quota_refusals = 0
        self.clock = clock
        self._arrivals: deque[float] = deque()
        self._rng = random.Random(seed)
        self._events: dict[str, tuple[Status, ResaleStatus]] = {}
        self.catalog = Catalog()
        """The events the Discovery API knows."""
        self.discovery_requests = 0
        self.markets: dict[str, str] = dict(markets or {})
        """Each event's market (country code) where it matters: GB and IE events answer only
        to `region=UK`; FR, IT and TR events never answer."""
        self.invalid: set[str] = set()
        """IDs Ticketmaster does not know: they answer UNKNOWN with `INVALID_EVENT_ID`."""
        self._faults: deque[ScriptedFault] = deque()
        for event_id in watched or ():
            self.current(event_id)

    @property
    def events(self) -> dict[str, tuple[Status, ResaleStatus]]:
        """Every event's status and resale status, by ID."""
        return self._events

    @property
    def faults_queued(self) -> int:
        return len(self._faults)

    def current(self, event_id: str) -> tuple[Status, ResaleStatus]:
        known = self._events.get(event_id)
        if known is None:
            digest = zlib.crc32(f"{self.seed}:{event_id}".encode())
            known = (_WALK[digest % 3], _RESALE[(digest >> 8) % 2])
            self._events[event_id] = known
        return known

    def set(self, event_id: str, status: Status, resale: ResaleStatus | None = None) -> None:
        self._events[event_id] = (status, resale or self.current(event_id)[1])

    def step(self) -> tuple[str, Status] | None:
        """Move one random known event to another status; returns what changed."""
        if not self._events:
            return None
        event_id = self._rng.choice(sorted(self._events))
        status, resale = self._events[event_id]
        new = self._rng.choice([s for s in _WALK if s is not status])
        self._events[event_id] = (new, resale)
        return event_id, new

    def inject(self, fault: ScriptedFault, times: int = 1) -> None:
        self._faults.extend([fault] * times)

    def clear_faults(self) -> None:
        self._faults.clear()
        self.fault_rate = 0.0

    def _next_fault(self) -> ScriptedFault | None:
        if self._faults:
            return self._faults.popleft()
        if self.fault_rate and self._rng.random() < self.fault_rate:
            return self._rng.choice(self.fault_pool)
        return None

    def _limit(self) -> web.Response | None:
        """A 429 when this request breaks the spike arrest or the quota; else None."""
        now = self.clock()
        if self.rate is not None:
            while self._arrivals and self._arrivals[0] <= now - 1.0:
                self._arrivals.popleft()
            if len(self._arrivals) >= self.rate:
                self.spike_arrests += 1
                return json_answer(spike_arrest_fault(self.rate), status=429)
            self._arrivals.append(now)
        if self.quota is None:
            return None
        if now >= self.quota_reset_at:
            periods = math.floor((now - self.quota_reset_at) / self.quota_period) + 1
            self.quota_reset_at += periods * self.quota_period
            self.quota_used = 0
        if self.quota_used >= self.quota:
            self.quota_refusals += 1
            response = json_answer(QUOTA_FAULT, status=429)
            response.headers.update(self.quota_headers())
            return response
        self.quota_used += 1
        return None

    def quota_headers(self) -> dict[str, str]:
        if self.quota is None:
            return {}
        left = max(0, self.quota - self.quota_used)
        return {
            "Rate-Limit": str(self.quota),
            "Rate-Limit-Available": str(left),
            "Rate-Limit-Over": "0" if left else "1",
            "Rate-Limit-Reset": str(math.ceil(self.quota_reset_at * 1000)),  # never early
        }

    # -- HTTP ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(AVAILABILITY_PATH, self._availability)
        app.router.add_get(LEGACY_PATH, self._availability)
        app.router.add_get("/discovery/v2/events.json", self._discovery_search)
        app.router.add_get("/discovery/v2/attractions.json", self._discovery_attractions)
        app.router.add_get("/discovery/v2/events/{event_id}.json", self._discovery_event)
        Controls(self).add_routes(app.router)
        if self.change_every:
            app.cleanup_ctx.append(self._random_walk)
        return app

    async def _random_walk(self, _app: web.Application) -> AsyncIterator[None]:
        async def walk() -> None:
            assert self.change_every is not None
            while True:
                await asyncio.sleep(self.change_every)
                self.step()

        task = asyncio.create_task(walk())
        yield
        await finish(task)

    async def _availability(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.requested_at.append(self.clock())
        if self.max_url_bytes is not None and len(str(request.url)) > self.max_url_bytes:
            self.too_long += 1
            return web.Response(status=414, text="414 Request-URI Too Long")
        if self.latency:
            await asyncio.sleep(self.latency)
        refused = await self._admit(request)
        if refused is not None:
            return refused
        ids = [i for i in request.query.get("events", "").split(",") if i]
        if not ids or len(ids) > MAX_EVENTS_PER_REQUEST:
            return json_answer(
                {
                    "fault": {
                        "faultstring": f"events must list 1 to {MAX_EVENTS_PER_REQUEST} IDs",
                        "detail": {"errorcode": "inventory.InvalidRequest"},
                    }
                },
                status=400,
            )
        self.asked.update(ids)
        self.times_asked.update(ids)
        self._track(ids)
        legacy = request.path == LEGACY_PATH
        region = request.query.get("region")
        self.kinds[legacy, region] += 1
        answer = []
        for event_id in ids:
            answer.append(self._item(event_id, legacy=legacy, region=region))
        self.answered += 1
        response = json_answer(answer)
        response.headers.update(self.quota_headers())
        return response

    async def _admit(self, request: web.Request) -> web.StreamResponse | None:
        """What a request gets instead of an answer: the key refused, a limit, a fault."""
        if self.api_key is not None and request.query.get("apikey") != self.api_key:
            return json_answer(INVALID_KEY_FAULT, status=401)
        limited = self._limit()
        if limited is not None:
            return limited
        fault = self._next_fault()
        if fault is not None:
            return await respond_with(request, fault, self.quota_headers())
        return None

    async def _discovery_search(self, request: web.Request) -> web.StreamResponse:
        return await self._discovery(request, lambda: self.catalog.search(request.query))

    async def _discovery_attractions(self, request: web.Request) -> web.StreamResponse:
        return await self._discovery(request, lambda: self.catalog.attractions(request.query))

    async def _discovery_event(self, request: web.Request) -> web.StreamResponse:
        event_id = request.match_info["event_id"]
        return await self._discovery(request, lambda: self.catalog.event(event_id))

    async def _discovery(
        self, request: web.Request, answer: Callable[[], tuple[int, dict[str, Any]]]
    ) -> web.StreamResponse:
        """A Discovery request: admitted and limited as any, answered from the catalog."""
        self.requests += 1
        self.discovery_requests += 1
        refused = await self._admit(request)
        if refused is not None:
            return refused
        status, body = answer()
        response = json_answer(body, status=status)
        response.headers.update(self.quota_headers())
        return response

    def _item(self, event_id: str, *, legacy: bool, region: str | None) -> dict[str, str]:
        """One event's object in an answer, with the reason for an UNKNOWN where the API
        gives one."""
        unknown = {"eventId": event_id, "status": "UNKNOWN", "resaleStatus": "UNKNOWN"}
        if event_id in self.invalid:
            return unknown | {
                "statusDetail": INVALID_EVENT_ID,
                "resaleStatusDetail": INVALID_EVENT_ID,
            }
        if self.markets.get(event_id) in UNSUPPORTED_MARKETS:
            return unknown | {"statusDetail": UNSUPPORTED, "resaleStatusDetail": UNSUPPORTED}
        if not self._answers(event_id, legacy=legacy, region=region):
            return unknown
        status, resale = self.current(event_id)
        return {"eventId": event_id, "status": status, "resaleStatus": resale}

    def _answers(self, event_id: str, *, legacy: bool, region: str | None) -> bool:
        """Whether a request so made gets the event's status, not UNKNOWN."""
        if (LEGACY_ID.fullmatch(event_id) is not None) != legacy:
            return False
        market = self.markets.get(event_id)
        if market in UNSUPPORTED_MARKETS:
            return False
        return market not in UK_REGIONS or region == "UK"

    def _track(self, ids: list[str]) -> None:
        now = self.clock()
        polled_at = self.polled_at
        for event_id in ids:
            previous = polled_at.get(event_id)
            if previous is not None and now - previous > self.longest_gap:
                self.longest_gap = now - previous
            polled_at[event_id] = now


def demo_simulator(config: Config, now: datetime) -> Simulator:
    """The demo's simulated API: it knows the configured events (holding UK and Irish ones
    to `region=UK`, as the real one does), changes one every 3 seconds, and its Discovery
    API knows their venues and dates and the shows of two artists nobody listed."""
    simulator = Simulator(
        api_key=config.ticketmaster.api_key.get_secret_value(),
        change_every=3.0,
        watched=[e.id for e in config.events],
        markets={e.id: e.region for e in config.events if e.region is not None},
        rate=config.ticketmaster.requests_per_second,
        quota=config.ticketmaster.daily_quota,
    )
    for doc in demo_events(config.events, now):
        simulator.catalog.add(doc)
    return simulator


@contextlib.asynccontextmanager
async def serve(simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Run `simulator` on host:port (0 picks a free port); yields its base URL."""
    # Request lines as long as 1,000 IDs make; `max_url_bytes` plays a stricter proxy.
    runner = web.AppRunner(simulator.app(), access_log=None, max_line_size=64 * 1024)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
        yield f"http://{host}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
