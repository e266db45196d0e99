"""The notifiers in force and the dispatcher that sends through them: the config file's
notifiers and every user's channels. Replaced notifiers close once their sends are done;
`async with` runs the dispatcher and, on the way out, lets it finish what it can."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import TracebackType

from monitor.config import Config
from monitor.metrics import Metrics
from monitor.notify.channels import ChannelRoster
from monitor.notify.dispatcher import Dispatcher
from monitor.notify.notifiers.base import Notifier
from monitor.notify.roster import Roster, Route
from monitor.store.accounts import Accounts
from monitor.store.outbox import Outbox
from monitor.tasks import finish

logger = logging.getLogger(__name__)

RETIRE_AFTER = 60.0
"""Longest wait for sends through replaced notifiers before they are closed anyway."""


class Switchboard:
    def __init__(
        self,
        config: Callable[[], Config],
        accounts: Accounts,
        outbox: Outbox,
        clock: Callable[[], float],
        *,
        metrics: Metrics,
        drain_for: float,
    ) -> None:
        self._roster = Roster()
        self._config_routes = self._roster.routes(config())[0]
        self.channels = ChannelRoster(accounts, lambda: config().users.allow_private_targets)
        self.dispatcher = Dispatcher(outbox, self._config_routes, clock, metrics=metrics)
        self._drain_for = drain_for
        self._running: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Switchboard:
        await self.channels.refresh()
        self.dispatcher.set_routes(self._routes())
        self._running = asyncio.create_task(self.dispatcher.run(), name="dispatcher")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._running is not None:
            await finish(self._running)
        try:
            await asyncio.wait_for(self.dispatcher.drain(), self._drain_for)
        except TimeoutError:
            logger.warning("deliveries still in flight at shutdown are sent again on restart")
        await self.dispatcher.aclose()
        for task in list(self._retiring):
            await finish(task)
        await self._roster.aclose()
        await self.channels.aclose()

    def notifiers(self) -> dict[str, Notifier]:
        return self.dispatcher.notifiers()

    def wake(self) -> None:
        self.dispatcher.wake()

    def use(self, config: Config) -> None:
        """A reloaded config's notifiers: those whose settings changed are replaced."""
        self._config_routes, replaced = self._roster.routes(config)
        self.dispatcher.set_routes(self._routes())
        self._retire_later(replaced)

    async def refresh_channels(self) -> None:
        """Users' channels as they stand: a user written to here or on another replica has
        their routes rebuilt, and the notifiers replaced close once their sends are done."""
        replaced = await self.channels.refresh()
        if replaced is None:
            return
        self.dispatcher.set_routes(self._routes())
        self._retire_later(replaced)

    def _routes(self) -> dict[str, Route]:
        return {**self._config_routes, **self.channels.routes()}

    def _retire_later(self, notifiers: list[Notifier]) -> None:
        retiring = asyncio.create_task(self._retire(notifiers))
        self._retiring.add(retiring)
        retiring.add_done_callback(self._retiring.discard)

    async def _retire(self, notifiers: list[Notifier]) -> None:
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.dispatcher.drain(), RETIRE_AFTER)
        finally:
            for notifier in notifiers:
                await notifier.aclose()
