"""The outbox dispatcher: sends pending deliveries and records every attempt.

Deliveries are claimed per notifier, never more than its free concurrency, so a slow or
dead receiver only ever occupies its own slots. A claim is a lease: should the process die
mid-send, the delivery comes due again when the lease ends (at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from monitor.backoff import gives_up, retry_delay
from monitor.config import RetryConfig
from monitor.errors import DeliveryError
from monitor.models import Delivery
from monitor.notifiers.base import Notifier
from monitor.redact import redact
from monitor.store.repository import Repository

logger = logging.getLogger(__name__)

# Changes carried by one grouped message at most; a bigger wave goes out in several.
_GROUP_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Route:
    notifier: Notifier
    retry: RetryConfig
    concurrency: int
    lease: float
    grouped: bool = False
    """Due deliveries go out together, as one message (the notifier has a group_window)."""


class Dispatcher:
    def __init__(
        self,
        repository: Repository,
        routes: Mapping[str, Route],
        clock: Callable[[], float],
        *,
        rng: random.Random | None = None,
        poll_every: float = 1.0,
    ) -> None:
        self._repository = repository
        self._routes = dict(routes)
        self._clock = clock
        self._rng = rng or random.Random()
        self._poll_every = poll_every
        self._wake = asyncio.Event()
        self._in_flight: dict[str, set[asyncio.Task[None]]] = {name: set() for name in routes}

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next periodic check."""
        self._wake.set()

    async def run(self) -> None:
        """Dispatch until cancelled."""
        while True:
            self._wake.clear()
            try:
                await self.pump()
            except Exception:
                logger.exception("could not read the delivery outbox; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_every)

    async def pump(self) -> int:
        """Start sending what is due, up to each notifier's free slots; returns how many."""
        started = 0
        now = self._clock()
        for name, route in self._routes.items():
            free = route.concurrency - len(self._in_flight[name])
            if free <= 0:
                continue
            limit = _GROUP_LIMIT if route.grouped else free
            claimed = await self._repository.claim_deliveries(name, now, limit, now + route.lease)
            messages = [claimed] if route.grouped and claimed else [[d] for d in claimed]
            for members in messages:
                first, *rest = members
                message = replace(first, group=tuple(d.change for d in rest))
                task = asyncio.create_task(self._deliver(route, message, [d.id for d in members]))
                self._in_flight[name].add(task)
                task.add_done_callback(self._in_flight[name].discard)
            started += len(claimed)
        return started

    async def drain(self) -> None:
        """Wait for every send in flight to finish."""
        while tasks := [t for group in self._in_flight.values() for t in group]:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        tasks = [t for group in self._in_flight.values() for t in group]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver(self, route: Route, delivery: Delivery, members: list[str]) -> None:
        """Send one message; `members` are the IDs of the deliveries it carries."""
        log = {
            "notifier": delivery.notifier,
            "event_id": delivery.change.event_id,
            "delivery_id": delivery.id,
        }
        try:
            answer = await route.notifier.send(delivery)
        except DeliveryError as exc:
            await self._failed(route, delivery, members, exc, log)
        except Exception as exc:
            # A notifier bug must not lose the delivery: record it and retry like any failure.
            logger.exception("notifier %s crashed while sending", delivery.notifier, extra=log)
            error = DeliveryError(f"{type(exc).__name__}: {exc}")
            await self._failed(route, delivery, members, error, log)
        else:
            for delivery_id in members:
                await self._repository.record_attempt(
                    delivery_id,
                    attempted_at=self._clock(),
                    outcome="delivered",
                    status_code=None,
                    error=None,
                    next_attempt_at=None,
                )
            logger.debug(
                "delivered %s to %s: %s", delivery.id, delivery.notifier, answer, extra=log
            )
        self.wake()

    async def _failed(
        self,
        route: Route,
        delivery: Delivery,
        members: list[str],
        error: DeliveryError,
        log: dict[str, str],
    ) -> None:
        now = self._clock()
        message = redact(str(error))
        next_at = now + retry_delay(
            delivery.attempt, route.retry.backoff, retry_after=error.retry_after, rng=self._rng
        )
        created_at = delivery.change.observed_at
        if error.retryable and not gives_up(created_at, now, next_at, route.retry.give_up_after):
            logger.warning(
                "delivery %s to %s failed (attempt %d): %s; next try in %.0fs",
                delivery.id,
                delivery.notifier,
                delivery.attempt,
                message,
                next_at - now,
                extra=log,
            )
            outcome = "failed"
        else:
            why = "gave up after retrying" if error.retryable else "permanent failure"
            logger.error(
                "delivery %s to %s is dead (%s): %s",
                delivery.id,
                delivery.notifier,
                why,
                message,
                extra=log,
            )
            outcome = "dead"
        for delivery_id in members:
            await self._repository.record_attempt(
                delivery_id,
                attempted_at=now,
                outcome=outcome,
                status_code=error.status,
                error=message,
                next_attempt_at=next_at,
            )
