"""The interface every notifier kind implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from monitor.models import DaemonHealth, Delivery, EventStatus, Notice


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


@runtime_checkable
class StatePublisher(Protocol):
    """A notifier that also keeps every watched event's state where subscribers see it."""

    async def publish_states(self, events: Sequence[EventStatus]) -> None:
        """The watched events as they stand (at start-up, after a reload)."""

    async def forget(self, event_ids: Sequence[str]) -> None:
        """Events no longer watched: whatever was published about them is cleared."""

    async def pause(self, events: Sequence[EventStatus]) -> None:
        """Events paused: what was published about them stays, marked as not watched."""

    async def publish_health(self, health: DaemonHealth) -> None:
        """The watcher itself: when it last polled, the upstream's health, the quota left."""


@runtime_checkable
class Reconnecting(Protocol):
    """A notifier with a standing connection, which knows when its receiver is back before
    any send does: it calls `on_return` then, and what waits for it goes out at once."""

    on_return: Callable[[], None] | None
