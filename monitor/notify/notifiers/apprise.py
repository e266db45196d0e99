"""The `apprise` notifier: Slack, Discord, Telegram, ntfy, Pushover, Teams and more, through
Apprise URLs. It rides the same outbox and retries as every other notifier."""

from __future__ import annotations

import asyncio
import logging

import apprise

from monitor.config import AppriseNotifierConfig
from monitor.config.apprise_urls import without_urls
from monitor.errors import DeliveryError
from monitor.models import Delivery, Notice
from monitor.netguard import resolved_problem, url_host
from monitor.notify.rendering import Renderer
from monitor.redact import redact


class AppriseNotifier:
    kind = "apprise"

    def __init__(self, name: str, config: AppriseNotifierConfig, *, guarded: bool = False) -> None:
        self.name = name
        self.config = config
        self._guarded = guarded
        """Refuse servers at private and loopback addresses (see `netguard`): a member's
        channel."""
        self._renderer = Renderer(subject=config.subject, body=config.body)
        self._apprise = apprise.Apprise()
        for url in config.urls:
            self._apprise.add(url)

    async def send(self, delivery: Delivery) -> str:
        changes = delivery.changes
        return await self._notify(self._renderer.subject(changes), self._renderer.body(changes))

    async def send_notice(self, notice: Notice) -> str:
        return await self._notify(notice.subject, notice.body)

    async def _notify(self, title: str, body: str) -> str:
        if self._guarded:
            await self._check_hosts()
        # Apprise answers only yes or no; its log says which service failed, and why.
        with apprise.LogCapture(level=logging.WARNING) as said:  # type: ignore[no-untyped-call]
            try:
                delivered = await asyncio.wait_for(
                    self._apprise.async_notify(title=title, body=body), self.config.timeout
                )
            except TimeoutError:
                raise DeliveryError(f"no answer within {self.config.timeout:g}s") from None
        if not delivered:
            reasons = [
                without_urls(line.split(" - ", 2)[-1]) for line in said.getvalue().splitlines()
            ]
            why = "; ".join(dict.fromkeys(reasons)) or "no reason given"
            raise DeliveryError(
                redact(f"apprise could not notify every one of {len(self.config.urls)} URLs: {why}")
            )
        return f"notified {len(self.config.urls)} URLs"

    async def _check_hosts(self) -> None:
        for url in self.config.urls:
            host = url_host(url)
            problem = None if host is None else await resolved_problem(host)
            if problem is not None:
                raise DeliveryError(f"refused: {problem}", retryable=False)

    async def aclose(self) -> None:
        return None
