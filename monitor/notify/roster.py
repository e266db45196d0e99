"""The running notifiers, one per configured name, each with how deliveries go through it
(`Route`): a reload rebuilds only those whose settings changed, so a connection (an MQTT
session, say) outlives reloads that leave it be."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.config import Config, NotifierConfig, RetryConfig
from monitor.notify.notifiers import build_notifier
from monitor.notify.notifiers.base import Notifier
from monitor.notify.quiet import QuietHours


@dataclass(frozen=True, slots=True)
class Route:
    notifier: Notifier
    retry: RetryConfig
    concurrency: int
    timeout: float
    group_window: float = 0.0
    """Deliveries piling up within this many seconds go out as one message (see
    `notify.grouping`); 0 sends each at once."""
    quiet_hours: QuietHours | None = None
    """Deliveries in this window wait for its end, then go out together (`notify.quiet`)."""

    @classmethod
    def of(cls, notifier: Notifier, config: NotifierConfig) -> Route:
        return cls(
            notifier,
            config.retry,
            config.concurrency,
            timeout=config.timeout,
            group_window=config.group_window or 0.0,
            quiet_hours=QuietHours.of(config.quiet_hours),
        )

    @property
    def grouped(self) -> bool:
        """Whether what is claimed together goes out as one message."""
        return bool(self.group_window) or self.quiet_hours is not None


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
