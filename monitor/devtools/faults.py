"""The faults the simulator answers with: Ticketmaster's own fault bodies, and the failures
any HTTP API has (HTML 5xx, resets, truncated bodies, hangs), scripted or at random."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

INVALID_KEY_FAULT = {
    "fault": {"faultstring": "Invalid ApiKey", "detail": {"errorcode": "oauth.v2.InvalidApiKey"}}
}


def _fault_body(text: str, code: str) -> dict[str, Any]:
    return {"fault": {"faultstring": text, "detail": {"errorcode": code}}}


QUOTA_FAULT = _fault_body(
    "Rate limit quota violation. Quota limit exceeded.", "policies.ratelimit.QuotaViolation"
)


def spike_arrest_fault(rate: float) -> dict[str, Any]:
    return _fault_body(
        f"Spike arrest violation. Allowed rate : {rate:g}ps",
        "policies.ratelimit.SpikeArrestViolation",
    )


FaultKind = Literal["http", "reset", "truncate", "hang"]


@dataclass(slots=True)
class ScriptedFault:
    """One bad answer: an HTTP answer as given, a connection reset, a body cut short, or
    an answer that comes only after `delay` seconds."""

    status: int = 500
    body: str = ""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    kind: FaultKind = "http"
    delay: float = 0.0


RESET = ScriptedFault(kind="reset")
TRUNCATED = ScriptedFault(kind="truncate")
HTML_503 = ScriptedFault(503, "<html><body>Service Unavailable</body></html>", "text/html")


async def respond_with(
    request: web.Request, fault: ScriptedFault, headers: dict[str, str]
) -> web.StreamResponse:
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.kind == "reset":
        if request.transport is not None:
            request.transport.abort()
        return web.Response()
    if fault.kind == "truncate":
        response = web.StreamResponse(headers={"Content-Type": "application/json", **headers})
        response.content_length = 4096
        await response.prepare(request)
        await response.write(b'[{"eventId": "')
        if request.transport is not None:
            request.transport.abort()
        return response
    return web.Response(
        status=fault.status,
        text=fault.body,
        content_type=fault.content_type,
        headers={**headers, **fault.headers},
    )
