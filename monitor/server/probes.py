"""The probes: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.models import Health
from monitor.readiness import readiness
from monitor.server import api
from monitor.server.context import CONTEXT
from monitor.server.routes import Answer, Route, ok

DATABASE_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.Response:
    if not request.app[CONTEXT].polling():
        return api.json_response({"status": "not polling"}, 503)
    return api.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    shortest = None
    try:
        shortest = await asyncio.wait_for(context.reads.shortest_interval(), DATABASE_TIMEOUT)
    except Exception:  # whatever the driver raises, the database is not usable
        database_ok = False
    else:
        database_ok = True
    status = context.upstream.status
    reasons = readiness(
        now=context.clock(),
        started_at=context.started_at,
        last_success_at=status.last_success_at,
        shortest_interval=shortest or context.config.shortest_interval(),
        health=status.health,
        database_ok=database_ok,
        watching=bool(context.config.events),
        storage_failures=context.storage_failures(),
        unready_after=context.config.server.unready_after,
    )
    if not context.polling():
        reasons.append("scheduler_stalled")
    return api.json_response(
        {
            "status": "not_ready" if reasons else "ready",
            "reasons": reasons,
            "last_successful_poll_at": api.when(status.last_success_at),
        },
        503 if reasons else 200,
    )


async def metrics(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    figures = context.metrics
    outbox = await context.reads.outbox_stats()
    now = context.clock()
    figures.outbox_pending.set(outbox.pending)
    oldest = outbox.oldest_created_at
    figures.outbox_oldest_seconds.set(0 if oldest is None else max(0.0, now - oldest))
    figures.watched.set(await context.reads.watched_count())
    status = context.upstream.status
    figures.last_success.set(status.last_success_at or 0)
    available = status.quota.available
    figures.quota_remaining.set(-1 if available is None else available)
    for health in Health:
        figures.upstream_health.labels(health.value).set(int(health is status.health))
    return web.Response(
        body=generate_latest(figures.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


ROUTES = (
    Route(
        "GET",
        "/healthz",
        healthz,
        "Liveness",
        {200: Answer("Alive"), 503: Answer("The poll scheduler is not running")},
        public=True,
    ),
    Route(
        "GET",
        "/readyz",
        readyz,
        "Readiness: the database answers and polls succeed",
        {
            200: ok(api.Readiness, "Ready"),
            503: ok(api.Readiness, "Not ready; `reasons` says why"),
            401: api.UNAUTHORIZED,
        },
    ),
    Route(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics",
        {200: Answer("Text format"), 401: api.UNAUTHORIZED},
    ),
)
