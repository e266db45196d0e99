"""The `log` notifier: one human line per change in the daemon's log."""

from __future__ import annotations

import logging

from monitor.config import LogNotifierConfig
from monitor.models import Delivery
from monitor.templating import DEFAULT_LINE, Renderer

logger = logging.getLogger("monitor.changes")


class LogNotifier:
    kind = "log"

    def __init__(self, name: str, config: LogNotifierConfig) -> None:
        self.name = name
        self.config = config
        self._renderer = Renderer(body=config.body, default_body=DEFAULT_LINE)

    async def send(self, delivery: Delivery) -> str:
        change = delivery.change
        logger.info(
            "%s",
            self._renderer.body(change).strip(),
            extra={"event_id": change.event_id, "notifier": self.name},
        )
        return "logged"

    async def aclose(self) -> None:
        return None
