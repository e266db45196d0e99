"""A Ticketmaster-compatible Inventory Status API for the demo, the tests and the benchmark.

Same path, parameters, JSON shape and fault bodies as the real service. Every event ID is
known: its first status comes from a hash of the seed and the ID, so runs repeat. A seeded
random walk changes statuses over time, and a small control API under `/_sim/` lets tests
set statuses and script faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import zlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from monitor.models import RESALE_BY_NAME, STATUS_BY_NAME, ResaleStatus, Status
from monitor.ticketmaster import AVAILABILITY_PATH

logger = logging.getLogger(__name__)

MAX_EVENTS_PER_REQUEST = 1000
_WALK = (Status.TICKETS_AVAILABLE, Status.FEW_TICKETS_LEFT, Status.TICKETS_NOT_AVAILABLE)
_RESALE = (ResaleStatus.TICKETS_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE)

INVALID_KEY_FAULT = {
    "fault": {"faultstring": "Invalid ApiKey", "detail": {"errorcode": "oauth.v2.InvalidApiKey"}}
}


@dataclass(slots=True)
class ScriptedFault:
    status: int
    body: str
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class Simulator:
    def __init__(
        self,
        *,
        api_key: str | None = "sim-key",
        seed: int = 0,
        change_every: float | None = None,
        watched: list[str] | None = None,
    ) -> None:
        self.api_key = api_key
        self.seed = seed
        self.change_every = change_every
        self.requests = 0
        self._rng = random.Random(seed)
        self._events: dict[str, tuple[Status, ResaleStatus]] = {}
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

    # -- HTTP ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(AVAILABILITY_PATH, self._availability)
        app.router.add_get("/_sim/events", self._list)
        app.router.add_put("/_sim/events/{event_id}", self._put)
        app.router.add_post("/_sim/all", self._all)
        app.router.add_post("/_sim/step", self._step)
        app.router.add_post("/_sim/faults", self._fault)
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
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _availability(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.api_key is not None and request.query.get("apikey") != self.api_key:
            return _json(INVALID_KEY_FAULT, status=401)
        if self._faults:
            fault = self._faults.popleft()
            return web.Response(
                status=fault.status,
                text=fault.body,
                content_type=fault.content_type,
                headers=fault.headers,
            )
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
        answer = []
        for event_id in ids:
            status, resale = self.current(event_id)
            answer.append({"eventId": event_id, "status": status, "resaleStatus": resale})
        return _json(answer)

    async def _list(self, _request: web.Request) -> web.Response:
        return _json(
            {eid: {"status": s, "resaleStatus": r} for eid, (s, r) in self._events.items()}
        )

    async def _put(self, request: web.Request) -> web.Response:
        body = await _body(request)
        status = STATUS_BY_NAME.get(body.get("status", ""))
        resale = (
            RESALE_BY_NAME.get(body.get("resaleStatus", "")) if "resaleStatus" in body else None
        )
        if status is None or ("resaleStatus" in body and resale is None):
            raise web.HTTPBadRequest(text="status (and resaleStatus) must be documented values")
        self.set(request.match_info["event_id"], status, resale)
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
        try:
            fault = ScriptedFault(
                status=int(body["status"]),
                body=str(body.get("body", "")),
                content_type=str(body.get("content_type", "application/json")),
                headers={str(k): str(v) for k, v in body.get("headers", {}).items()},
            )
            times = int(body.get("times", 1))
        except (KeyError, TypeError, ValueError):
            raise web.HTTPBadRequest(
                text="expected {status, body?, content_type?, headers?, times?}"
            ) from None
        self.inject(fault, times)
        return _json({"queued": len(self._faults)})


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
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
        yield f"http://{host}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
