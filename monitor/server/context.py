"""What the HTTP handlers read: the running daemon's parts, behind one application key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from monitor.config import Config
from monitor.metrics import Metrics
from monitor.store.reads import Reads
from monitor.upstream.health import Upstream


@dataclass(slots=True)
class Context:
    config: Config
    """The configuration in force; a reload replaces it."""
    reads: Reads
    upstream: Upstream
    metrics: Metrics
    clock: Callable[[], float]
    started_at: float
    polling: Callable[[], bool] = lambda: True
    """Whether the poll scheduler runs."""


CONTEXT = web.AppKey("context", Context)
NONCE = web.RequestKey("nonce", str)
"""The page's one-time value that its script and style carry (Content-Security-Policy)."""
