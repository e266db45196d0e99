"""What the HTTP handlers read: the running daemon's parts, behind one application key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from monitor.config import Config
from monitor.following import Following
from monitor.metrics import Metrics
from monitor.store.reads import Reads
from monitor.subscribing import Subscribing
from monitor.upstream.health import Upstream
from monitor.users import Principal, Users
from monitor.watching import Watching


@dataclass(slots=True)
class Context:
    settings: Callable[[], Config]
    """The configuration in force, with every watch in force: read when asked, so that a
    reload or a watch written costs the server nothing until it looks."""
    reads: Reads
    upstream: Upstream
    metrics: Metrics
    clock: Callable[[], float]
    started_at: float
    polling: Callable[[], bool] = lambda: True
    """Whether the poll scheduler runs."""
    storage_failures: Callable[[], int] = lambda: 0
    """Poll cycles in a row whose claim or write the database refused."""
    watching: Watching | None = None
    """Watches as the API and the dashboard manage them; None where the server only reads."""
    retry: Callable[[str], Awaitable[bool]] | None = None
    """Queues a dead delivery again; False when no dead delivery has that ID."""
    shares: Callable[[], Mapping[str, float]] = dict
    """Requests a day each user's subscriptions add beyond what is polled anyway."""
    users: Users | None = None
    """The people sharing the watcher; None where the server only reads."""
    subscribing: Subscribing | None = None
    """What each user follows and hears on."""
    following: Following | None = None
    """The searches the operator follows at runtime."""

    @property
    def config(self) -> Config:
        return self.settings()

    @property
    def writable(self) -> bool:
        """Writes need a token: without one, any web page could POST to a daemon on
        localhost."""
        return self.watching is not None and self.config.server.token is not None


CONTEXT = web.AppKey("context", Context)
PRINCIPAL = web.RequestKey("principal", Principal)
"""Who the request acts as, once authenticated: a user, or the operator's token."""
NONCE = web.RequestKey("nonce", str)
"""The page's one-time value that its script and style carry (Content-Security-Policy)."""
