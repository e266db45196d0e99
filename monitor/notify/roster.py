"""The running notifiers, one per configured name: a reload rebuilds only those whose
settings changed, so a connection (an MQTT session, say) outlives reloads that leave it be."""

from __future__ import annotations

from monitor.config import Config, NotifierConfig
from monitor.notify.dispatcher import Route
from monitor.notify.notifiers import build_notifier
from monitor.notify.notifiers.base import Notifier


class Roster:
    def __init__(self) -> None:
        self._running: dict[str, tuple[NotifierConfig, Notifier]] = {}

    def routes(self, config: Config) -> tuple[dict[str, Route], list[Notifier]]:
        """Routes for `config`'s notifiers; returns them and the notifiers they replace,
        which the caller closes once their sends are done."""
        previous, self._running = self._running, {}
        for name, settings in config.notifiers.items():
            kept = previous.pop(name, None)
            if kept is not None and kept[0] == settings:
                self._running[name] = kept
            else:
                self._running[name] = (settings, build_notifier(name, settings))
                if kept is not None:
                    previous[name] = kept
        routes = {
            name: Route.of(notifier, settings)
            for name, (settings, notifier) in self._running.items()
        }
        return routes, [notifier for _, notifier in previous.values()]

    async def aclose(self) -> None:
        for _, notifier in self._running.values():
            await notifier.aclose()
