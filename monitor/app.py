"""The running daemon: `async with Monitor(config): ...` polls and notifies until exit, and
applies a changed configuration file without a restart."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType

from sqlalchemy.exc import SQLAlchemyError

from monitor.assembly import Parts, Timing, assemble
from monitor.config import Config, load_config
from monitor.errors import ConfigError, MonitorError, StoreError
from monitor.filewatch import FileWatcher
from monitor.metrics import Metrics
from monitor.polling.poller import FOLLOW_EVERY
from monitor.polling.ticker import tick_for
from monitor.redact import redactor
from monitor.schedule import Schedule
from monitor.server.context import Context
from monitor.store.batching import unit_size
from monitor.store.engine import database_reason
from monitor.upstream.sizing import RequestSize

logger = logging.getLogger(__name__)

RESTART_ONLY = ("database", "server", "logging")
"""Sections a reload does not apply: they are set up once, at start."""


class Monitor:
    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        config_path: Path | None = None,
        watch_every: float = 2.5,
        housekeeping_every: float = 10.0,
        follow_every: float = FOLLOW_EVERY,
    ) -> None:
        self.config = config
        self.clock = clock
        self.config_path = config_path
        """Where the config came from: SIGHUP, or a change of the file, reloads it."""
        self.metrics = Metrics()
        self.schedule = Schedule()
        """Every periodic job: the poll tick, housekeeping, the config file's watcher."""
        self._timing = Timing(housekeeping_every, follow_every)
        self._watcher = None if config_path is None else FileWatcher(config_path, self.reload)
        self._watch_every = watch_every
        self._stack = AsyncExitStack()
        self._parts: Parts | None = None

    @property
    def parts(self) -> Parts:
        """The running daemon's parts, for tests, benchmarks and tools to look at."""
        if self._parts is None:
            raise MonitorError("the monitor is not running")
        return self._parts

    @property
    def url(self) -> str | None:
        """The HTTP server's base URL, once it listens."""
        return None if self._parts is None else self._parts.url

    @property
    def context(self) -> Context | None:
        return None if self._parts is None else self._parts.context

    @property
    def in_force(self) -> Config:
        """The configuration with every watch in force, the file's and the database's."""
        return self.parts.sync.in_force

    async def __aenter__(self) -> Monitor:
        try:
            self._parts = await assemble(
                lambda: self.config,
                self._stack,
                config_path=self.config_path,
                schedule=self.schedule,
                metrics=self.metrics,
                clock=self.clock,
                timing=self._timing,
            )
            if self._watcher is not None:
                self.schedule.every("config file", self._watch_every, self._watcher.check)
            # Every periodic job from here on; they stop first, before the parts they use.
            await self._stack.enter_async_context(self.schedule)
        except BaseException as exc:
            await self._stack.aclose()
            if isinstance(exc, SQLAlchemyError):
                # The CLI's contract at start-up: one line, exit 1, no traceback.
                raise StoreError(f"the database cannot be used: {database_reason(exc)}") from None
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def reload(self) -> bool:
        """Read the config file again and apply its watchlist and notifiers. An invalid file
        is refused with the same messages as `check`, and the running config stays."""
        if self.config_path is None:
            return False
        parts = self.parts
        async with parts.sync.lock:
            if self._watcher is not None:
                self._watcher.remember()
            config = await self._read_config(self.config_path)
            if config is None:
                return False
            if config.ticketmaster != self.config.ticketmaster:
                self._use_upstream_settings(config)
            parts.switchboard.use(config)
            await parts.sync.resync(config)
            parts.ticker.set_every(tick_for(config.shortest_interval()))
            self.config = config
            logger.info("configuration reloaded from %s", self.config_path)
        # New events, intervals or a replaced key are tried now, not at the next tick.
        parts.ticker.poke()
        return True

    async def _read_config(self, path: Path) -> Config | None:
        """The file's configuration, but for the sections only a restart applies; None
        (said in the log) when the file is refused."""
        refused: str | None = None
        try:
            config = await asyncio.to_thread(load_config, path)
        except ConfigError as exc:
            refused = str(exc)  # the same lines as `check`, with no traceback
        if refused is not None:
            logger.error(
                "the changed configuration is refused; the running one stays in force:\n%s",
                refused,
            )
            return None
        redactor.add(config.secrets())
        for section in RESTART_ONLY:
            if getattr(config, section) != getattr(self.config, section):
                logger.warning("a change of `%s` takes effect at the next restart", section)
        return config.model_copy(
            update={section: getattr(self.config, section) for section in RESTART_ONLY}
        )

    def _use_upstream_settings(self, config: Config) -> None:
        """A new key, address, timeout or batch size: requests from now on use them."""
        parts, tm, old = self.parts, config.ticketmaster, self.config.ticketmaster
        if (tm.pinned_batch_size, tm.max_url_bytes, tm.base_url) != (
            old.pinned_batch_size,
            old.max_url_bytes,
            old.base_url,
        ):
            parts.request_size.reset_to(
                RequestSize.of(
                    tm.pinned_batch_size,
                    tm.max_url_bytes,
                    parts.request_size.size,
                    grain=unit_size(tm.pinned_batch_size),
                )
            )
        parts.poller.use_client(
            parts.client(config),
            unit_size=unit_size(tm.pinned_batch_size),
            max_in_flight=tm.max_in_flight,
        )
        if tm.api_key != old.api_key:
            # A refused key may have been replaced: try the new one now, not in 5 minutes.
            parts.upstream.retry_now(in_flight_for=tm.timeout)
