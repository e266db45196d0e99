"""The simulator's control API, under `/_sim/`: what tests, benchmarks and the demo use to
set statuses, script faults, change limits and read what the simulated API saw."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from monitor.devtools.faults import ScriptedFault
from monitor.models import RESALE_BY_NAME, STATUS_BY_NAME

if TYPE_CHECKING:
    from monitor.devtools.simulator import Simulator


class Controls:
    def __init__(self, simulator: Simulator) -> None:
        self._sim = simulator

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_put("/_sim/discovery/{event_id}", self._put_discovery)
        router.add_get("/_sim/events", self._list)
        router.add_put("/_sim/events/{event_id}", self._put)
        router.add_post("/_sim/all", self._all)
        router.add_post("/_sim/step", self._step)
        router.add_post("/_sim/faults", self._fault)
        router.add_put("/_sim/limits", self._limits)
        router.add_get("/_sim/stats", self._stats)
        router.add_get("/_sim/gaps", self._gaps)
        router.add_post("/_sim/gaps", self._gaps)

    async def _put_discovery(self, request: web.Request) -> web.Response:
        """Add or replace an event document (Discovery's shape) in the catalog."""
        doc = await _body(request)
        doc["id"] = request.match_info["event_id"]
        self._sim.catalog.add(doc)
        return json_answer({"ok": True})

    async def _gaps(self, request: web.Request) -> web.Response:
        """GET: the longest gap between two polls of one event, and the stalest event now;
        POST: start measuring afresh."""
        if request.method == "POST":
            self._sim.longest_gap = 0.0
        now = self._sim.clock()
        oldest = min(self._sim.polled_at.values(), default=now)
        return json_answer(
            {
                "longest": self._sim.longest_gap,
                "stalest": now - oldest,
                "polled": len(self._sim.polled_at),
            }
        )

    async def _list(self, _request: web.Request) -> web.Response:
        return json_answer(
            {eid: {"status": s, "resaleStatus": r} for eid, (s, r) in self._sim.events.items()}
        )

    async def _put(self, request: web.Request) -> web.Response:
        """Set an event's status (and resale status, market); `{"invalid": true}` makes
        Ticketmaster forget it until a status is set again."""
        body = await _body(request)
        event_id = request.match_info["event_id"]
        if body.get("invalid") is True:
            self._sim.invalid.add(event_id)
            return json_answer({"ok": True})
        self._sim.invalid.discard(event_id)
        status = STATUS_BY_NAME.get(body.get("status", ""))
        resale = (
            RESALE_BY_NAME.get(body.get("resaleStatus", "")) if "resaleStatus" in body else None
        )
        if status is None or ("resaleStatus" in body and resale is None):
            raise web.HTTPBadRequest(text="status (and resaleStatus) must be documented values")
        if "market" in body:
            self._sim.markets[event_id] = str(body["market"]).upper()
        self._sim.set(event_id, status, resale)
        return json_answer({"ok": True})

    async def _all(self, request: web.Request) -> web.Response:
        """Set every known event to one status: a whole tour going on sale at once."""
        status = STATUS_BY_NAME.get((await _body(request)).get("status", ""))
        if status is None:
            raise web.HTTPBadRequest(text="status must be a documented value")
        for event_id in self._sim.events:
            self._sim.set(event_id, status)
        return json_answer({"changed": len(self._sim.events)})

    async def _step(self, _request: web.Request) -> web.Response:
        changed = self._sim.step()
        return json_answer({"changed": changed and {"eventId": changed[0], "status": changed[1]}})

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
            self._sim.fault_rate, self._sim.fault_pool = float(rate), [fault]
        else:
            self._sim.inject(fault, times)
        return json_answer({"queued": self._sim.faults_queued, "rate": self._sim.fault_rate})

    async def _stats(self, _request: web.Request) -> web.Response:
        return json_answer(
            {
                "requests": self._sim.requests,
                "answered": self._sim.answered,
                "spike_arrests": self._sim.spike_arrests,
                "quota_refusals": self._sim.quota_refusals,
                "too_long": self._sim.too_long,
                "observations": sum(self._sim.times_asked.values()),
                "distinct": len(self._sim.asked),
            }
        )

    async def _limits(self, request: web.Request) -> web.Response:
        """Set `rate`, `quota`, `quota_used` and `latency`; null lifts a limit."""
        body = await _body(request)
        try:
            if "rate" in body:
                self._sim.rate = None if body["rate"] is None else float(body["rate"])
            if "quota" in body:
                self._sim.quota = None if body["quota"] is None else int(body["quota"])
            if "quota_used" in body:
                self._sim.quota_used = int(body["quota_used"])
            if "latency" in body:
                self._sim.latency = float(body["latency"])
        except (TypeError, ValueError):
            raise web.HTTPBadRequest(text="expected numbers (or null)") from None
        return json_answer(
            {"rate": self._sim.rate, "quota": self._sim.quota, "latency": self._sim.latency}
        )


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json(loads=orjson.loads)
    except ValueError:
        raise web.HTTPBadRequest(text="the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return data


def json_answer(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")
