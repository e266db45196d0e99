"""The daemon in this process, against a simulated API: the one way tests start it. Tests
reach its parts through `Monitor.parts`, and its server through `http`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from monitor.app import Monitor
from monitor.devtools.simulator import Simulator, serve
from monitor.polling.poller import FOLLOW_EVERY
from tests.conftest import ConfigFactory


@dataclass(frozen=True)
class Running:
    monitor: Monitor
    simulator: Simulator
    http: aiohttp.ClientSession
    """A session on the daemon's server, as the operator when a token was given."""


@asynccontextmanager
async def in_process(
    make_config: ConfigFactory,
    simulator: Simulator,
    *,
    token: str | None = None,
    as_operator: bool = True,
    follow_every: float = FOLLOW_EVERY,
    **sections: Any,
) -> AsyncIterator[Running]:
    """`make_config(**sections)` against `simulator`, polling every second, with a server on
    a free port that `server.token` (`token`) opens, and writes elsewhere followed within
    `follow_every`. `http` sends the token unless `as_operator` is false."""
    async with serve(simulator) as upstream:
        config = make_config(
            **{
                **sections,
                "ticketmaster": {
                    "base_url": upstream,
                    "requests_per_second": 100,
                    **sections.get("ticketmaster", {}),
                },
                "polling": {"interval": "1s", **sections.get("polling", {})},
                "server": {"port": 0, "token": token, **sections.get("server", {})},
            }
        )
        headers = {"Authorization": f"Bearer {token}"} if token and as_operator else {}
        async with (
            Monitor(config, follow_every=follow_every) as monitor,
            aiohttp.ClientSession(monitor.url, headers=headers) as http,
        ):
            yield Running(monitor, simulator, http)
