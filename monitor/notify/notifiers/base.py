"""The interface every notifier kind implements."""

from __future__ import annotations

from typing import Protocol

from monitor.models import Delivery, Notice


class Notifier(Protocol):
    """Delivers one change to one destination.

    `send` returns a short description of the receiver's answer ("HTTP 204") and raises
    DeliveryError when the delivery failed; the error says whether trying again may help.
    `send_notice` does the same for a message about the watcher itself.
    """

    kind: str
    name: str

    async def send(self, delivery: Delivery) -> str: ...

    async def send_notice(self, notice: Notice) -> str: ...

    async def aclose(self) -> None: ...
