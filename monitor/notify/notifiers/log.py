"""The `log` notifier: one human line per change in the daemon's log."""

from __future__ import annotations

import logging

from monitor.config import LogNotifierConfig
from monitor.models import Delivery, Notice, NoticeKind
from monitor.notify.rendering import DEFAULT_LINE, Renderer

logger = logging.getLogger("monitor.changes")


class LogNotifier:
    kind = "log"

    def __init__(self, name: str, config: LogNotifierConfig) -> None:
        self.name = name
        self.config = config
        self._renderer = Renderer(body=config.body, default_body=DEFAULT_LINE)

    async def send(self, delivery: Delivery) -> str:
        for line in self._renderer.body(delivery.changes).strip().splitlines():
            logger.info(
                "%s", line, extra={"event_id": delivery.change.event_id, "notifier": self.name}
            )
        return "logged"

    async def send_notice(self, notice: Notice) -> str:
        level = logging.INFO if notice.kind is not NoticeKind.STALLED else logging.ERROR
        logger.log(level, "%s\n%s", notice.subject, notice.body, extra={"notifier": self.name})
        return "logged"

    async def aclose(self) -> None:
        return None
