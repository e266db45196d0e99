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

import orjson
from aiohttp import web

from monitor.config import Config
from monitor.devtools.catalog import Catalog, demo_events
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
    RESALE_BY_NAME,
    STATUS_BY_NAME,
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
                return _json(spike_arrest_fault(self.rate), status=429)
            self._arrivals.append(now)
        if self.quota is None:
            return None
        if now >= self.quota_reset_at:
            periods = math.floor((now - self.quota_reset_at) / self.quota_period) + 1
            self.quota_reset_at += periods * self.quota_period
            self.quota_used = 0
        if self.quota_used >= self.quota:
            self.quota_refusals += 1
            response = _json(QUOTA_FAULT, status=429)
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
        app.router.add_put("/_sim/discovery/{event_id}", self._put_discovery)
        app.router.add_get("/_sim/events", self._list)
        app.router.add_put("/_sim/events/{event_id}", self._put)
        app.router.add_post("/_sim/all", self._all)
        app.router.add_post("/_sim/step", self._step)
        app.router.add_post("/_sim/faults", self._fault)
        app.router.add_put("/_sim/limits", self._limits)
        app.router.add_get("/_sim/stats", self._stats)
        app.router.add_get("/_sim/gaps", self._gaps)
        app.router.add_post("/_sim/gaps", self._gaps)
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
            return _json(
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
        response = _json(answer)
        response.headers.update(self.quota_headers())
        return response

    async def _admit(self, request: web.Request) -> web.StreamResponse | None:
        """What a request gets instead of an answer: the key refused, a limit, a fault."""
        if self.api_key is not None and request.query.get("apikey") != self.api_key:
            return _json(INVALID_KEY_FAULT, status=401)
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
        response = _json(body, status=status)
        response.headers.update(self.quota_headers())
        return response

    async def _put_discovery(self, request: web.Request) -> web.Response:
        """Add or replace an event document (Discovery's shape) in the catalog."""
        doc = await _body(request)
        doc["id"] = request.match_info["event_id"]
        self.catalog.add(doc)
        return _json({"ok": True})

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

    async def _gaps(self, request: web.Request) -> web.Response:
        """GET: the longest gap between two polls of one event, and the stalest event now;
        POST: start measuring afresh."""
        if request.method == "POST":
            self.longest_gap = 0.0
        now = self.clock()
        oldest = min(self.polled_at.values(), default=now)
        return _json(
            {"longest": self.longest_gap, "stalest": now - oldest, "polled": len(self.polled_at)}
        )

    async def _list(self, _request: web.Request) -> web.Response:
        return _json(
            {eid: {"status": s, "resaleStatus": r} for eid, (s, r) in self._events.items()}
        )

    async def _put(self, request: web.Request) -> web.Response:
        """Set an event's status (and resale status, market); `{"invalid": true}` makes
        Ticketmaster forget it until a status is set again."""
        body = await _body(request)
        event_id = request.match_info["event_id"]
        if body.get("invalid") is True:
            self.invalid.add(event_id)
            return _json({"ok": True})
        self.invalid.discard(event_id)
        status = STATUS_BY_NAME.get(body.get("status", ""))
        resale = (
            RESALE_BY_NAME.get(body.get("resaleStatus", "")) if "resaleStatus" in body else None
        )
        if status is None or ("resaleStatus" in body and resale is None):
            raise web.HTTPBadRequest(text="status (and resaleStatus) must be documented values")
        if "market" in body:
            self.markets[event_id] = str(body["market"]).upper()
        self.set(event_id, status, resale)
        return _json({"ok": True})

    async def _all(self, request: web.Request) -> web.Response:
        """Set every known event to one status: a whole tour going on sale at once."""
        status = STATUS_BY_NAME.get((await _body(request)).get("status", ""))
        if status is None:
            raise web.HTTPBadRequest(text="status must be a documented value")
        for event_id in self._events:
            self.set(event_id, status)
        return _json({"changed": len(self._events)})

    async def _step(self, _request: web.Request) -> web.Response:
        changed = self.step()
        return _json({"changed": changed and {"eventId": changed[0], "status": changed[1]}})

    async def _fault(self, request: web.Request) -> web.Response:
        body = await _body(request)
        kind = body.get("kind", "http")
        if kind not in ("http", "reset", "truncate", "hang"):
            raise web.HTTPBadRequest(text="kind must be http, reset, truncate or hang")
        try:
            fault = ScriptedFault(
                status=int(body.get("status", 500)),
                body=str(body.get("body", "")),
                content_type=str(body.get("content_type", "application/json")),
                headers={str(k): str(v) for k, v in body.get("headers", {}).items()},
                kind=kind,
                delay=float(body.get("delay", 0.0)),
            )
            times = int(body.get("times", 1))
            rate = body.get("rate")
        except (TypeError, ValueError, AttributeError):
            raise web.HTTPBadRequest(
                text="expected {kind?, status?, body?, content_type?, headers?, delay?, "
                "times? or rate?}"
            ) from None
        if rate is not None:
            self.fault_rate, self.fault_pool = float(rate), [fault]
        else:
            self.inject(fault, times)
        return _json({"queued": len(self._faults), "rate": self.fault_rate})

    async def _stats(self, _request: web.Request) -> web.Response:
        return _json(
            {
                "requests": self.requests,
                "answered": self.answered,
                "spike_arrests": self.spike_arrests,
                "quota_refusals": self.quota_refusals,
                "too_long": self.too_long,
                "observations": sum(self.times_asked.values()),
                "distinct": len(self.asked),
            }
        )

    async def _limits(self, request: web.Request) -> web.Response:
        """Set `rate`, `quota`, `quota_used` and `latency`; null lifts a limit."""
        body = await _body(request)
        try:
            if "rate" in body:
                self.rate = None if body["rate"] is None else float(body["rate"])
            if "quota" in body:
                self.quota = None if body["quota"] is None else int(body["quota"])
            if "quota_used" in body:
                self.quota_used = int(body["quota_used"])
            if "latency" in body:
                self.latency = float(body["latency"])
        except (TypeError, ValueError):
            raise web.HTTPBadRequest(text="expected numbers (or null)") from None
        return _json({"rate": self.rate, "quota": self.quota, "latency": self.latency})


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


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json(loads=orjson.loads)
    except ValueError:
        raise web.HTTPBadRequest(text="the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return data


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


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
