"""The outbox dispatcher: sends pending deliveries and records every attempt.

Each notifier has its own claims, queue and concurrency, so a slow or dead receiver only
ever occupies its own slots. A claim is a lease: should the process die mid-send, the
delivery comes due again when the lease ends (at-least-once). Outcomes are recorded in
batches, so a wave of thousands of deliveries costs a few transactions, not thousands.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace

from monitor.backoff import gives_up, retry_delay
from monitor.errors import DeliveryError
from monitor.metrics import Metrics
from monitor.models import ChangeKind, Delivery, Outcome
from monitor.notify.cooldown import LastSent, cooldown
from monitor.notify.decisions import SEND, Decision, DeferUntil, Send
from monitor.notify.grouping import group_decision
from monitor.notify.notifiers.base import Notifier, Reconnecting
from monitor.notify.quiet import quiet
from monitor.notify.roster import Route
from monitor.redact import redact
from monitor.store.outbox import Attempt, Claimed, CooldownHistory, Outbox
from monitor.tasks import finish
from monitor.times import to_next_beat

logger = logging.getLogger(__name__)

# Deliveries claimed ahead per notifier, in multiples of its concurrency.
_QUEUE_DEPTH = 64
# Changes carried by one grouped message at most; a bigger wave goes out in several.
_GROUP_LIMIT = 500


IDLE_LOOK = 10.0
"""Seconds between looks at an outbox with nothing due: this process's own changes wake the
dispatcher at once, and so do another replica's in its own process; a replay or retry from
the command line waits this long at most."""


class Dispatcher:
    def __init__(
        self,
        outbox: Outbox,
        routes: Mapping[str, Route],
        clock: Callable[[], float],
        *,
        rng: random.Random | None = None,
        poll_every: float = 1.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._outbox = outbox
        self._routes = dict(routes)
        self._clock = clock
        self._rng = rng or random.Random()
        self._metrics = metrics or Metrics()
        self._poll_every = poll_every
        self._wake = asyncio.Event()
        self._gates = {name: asyncio.Semaphore(r.concurrency) for name, r in routes.items()}
        self._queued: dict[str, set[str]] = {name: set() for name in routes}
        """Delivery IDs claimed by this process and not yet recorded, per notifier."""
        self._sends: set[asyncio.Task[None]] = set()
        self._outcomes: list[tuple[str, Attempt]] = []
        self._recording: asyncio.Task[None] | None = None
        self._failing: set[str] = set()
        """Notifiers whose last send failed: their next success brings their retries on."""
        self._returns: set[asyncio.Task[None]] = set()
        self._listen(routes)

    def notifiers(self) -> dict[str, Notifier]:
        return {name: route.notifier for name, route in self._routes.items()}

    def set_routes(self, routes: Mapping[str, Route]) -> None:
        """New notifier settings from the next claim on; sends already queued finish with
        the old ones, and deliveries of a removed notifier stay pending in the outbox."""
        for name, route in routes.items():
            self._queued.setdefault(name, set())
            old = self._routes.get(name)
            if old is None or old.concurrency != route.concurrency:
                self._gates[name] = asyncio.Semaphore(route.concurrency)
        self._routes = dict(routes)
        self._listen(routes)

    def _listen(self, routes: Mapping[str, Route]) -> None:
        for name, route in routes.items():
            if isinstance(route.notifier, Reconnecting):
                route.notifier.on_return = functools.partial(self.returned, name)

    def returned(self, notifier: str) -> None:
        """`notifier`'s receiver answers again: its deliveries waiting out a retry go now,
        not when a backoff meant for a receiver that is down runs out."""
        self._failing.discard(notifier)
        task = asyncio.create_task(self._bring_on(notifier))
        self._returns.add(task)
        task.add_done_callback(self._returns.discard)

    async def _bring_on(self, notifier: str) -> None:
        try:
            count = await self._outbox.retry_now(
                notifier, self._clock(), set(self._queued.get(notifier, ()))
            )
        except Exception:  # the retries still come, at their own times
            logger.exception("could not bring on the waiting deliveries to %s", notifier)
            return
        if count:
            logger.info(
                "notifier %s answers again: %d waiting deliveries go out now", notifier, count
            )
            self.wake()

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next periodic check."""
        self._wake.set()

    async def run(self) -> None:
        """Dispatch until cancelled."""
        while True:
            self._wake.clear()
            wait = self._poll_every
            try:
                # A read first: with nothing due, no claim takes the write lock, and the next
                # look is when the first retry or deferred delivery is due, or a while later
                # for what other processes may queue.
                pending = await self._outbox.pending_by_notifier()
                due = min(pending.values(), default=None)
                now = self._clock()
                if due is not None and due <= now:
                    await self.pump({name for name, at in pending.items() if at <= now})
                else:
                    wait = (
                        to_next_beat(IDLE_LOOK, now) if due is None else min(IDLE_LOOK, due - now)
                    )
            except Exception:
                logger.exception("could not read the delivery outbox; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def pump(self, due_now: Collection[str] | None = None) -> int:
        """Start sending what is due, as far as each notifier's queue has room: of the
        notifiers `due_now` (as the last look found them), or of every one."""
        started = 0
        now = self._clock()
        if due_now is None:
            due_now = set((await self._outbox.pending_by_notifier()).keys())
        for name, route in self._routes.items():
            if name in due_now:
                started += await self._pump_one(name, route, now)
        return started

    async def _pump_one(self, name: str, route: Route, now: float) -> int:
        """Start what is due through one notifier, as far as its queue has room."""
        queued = self._queued[name]
        room = route.concurrency * _QUEUE_DEPTH - len(queued)
        if room <= 0 or not await self._window_closed(name, route, now):
            return 0
        ahead = len(queued)

        def lease_until(count: int) -> float:
            # Long enough for the queue ahead of the last one taken, then its own send.
            waits = 1 if route.grouped else (ahead + count) / route.concurrency
            return now + (waits + 2) * route.timeout + 1.0

        limit = _GROUP_LIMIT if route.grouped else room
        claimed = await self._outbox.claim_deliveries(name, now, limit, lease_until)
        due = [d for d in await self._staged(name, route, claimed, now) if d.id not in queued]
        for members in [due] if route.grouped and due else [[d] for d in due]:
            self._start(route, members)
        return len(due)

    async def _window_closed(self, name: str, route: Route, now: float) -> bool:
        if not route.group_window:
            return True
        oldest_new, oldest_retry = await self._outbox.waiting(name)
        decision = group_decision(oldest_new, oldest_retry, route.group_window, now)
        return isinstance(decision, Send)

    async def _staged(
        self, name: str, route: Route, claimed: list[Claimed], now: float
    ) -> list[Delivery]:
        """The claimed deliveries that quiet hours and the cooldown let go now; the stages
        hold back or supersede the others."""
        managed = [c for c in claimed if _managed(route, c)]
        if not managed:
            return [claim.delivery for claim in claimed]
        events = {claim.delivery.change.event_id for claim in managed}
        history = await self._outbox.cooldown_history(name, events)
        due: list[Delivery] = []
        deferred: dict[str, float] = {}
        dropped: list[str] = []
        for claim in claimed:
            decision = self._decide(route, claim, history, now)
            if isinstance(decision, Send):
                due.append(claim.delivery)
            elif isinstance(decision, DeferUntil):
                deferred[claim.delivery.id] = decision.at
            else:
                dropped.append(claim.delivery.id)
        await self._outbox.settle(deferred, dropped, now)
        return due

    @staticmethod
    def _decide(route: Route, claim: Claimed, history: CooldownHistory, now: float) -> Decision:
        """Quiet hours first; then, for a notifier with quiet hours or a cooldown, only the
        latest state of an event, and only if it is not what was last sent."""
        snoozed = claim.snoozed_until
        if snoozed is not None and now < snoozed:
            return DeferUntil(snoozed)  # the event is snoozed: stored now, told later
        decision = quiet(now, route.quiet_hours, claim.urgent)
        if not isinstance(decision, Send):
            return decision
        change = claim.delivery.change
        if not _managed(route, claim):
            return SEND
        if change.kind is not ChangeKind.INVENTORY:
            return SEND  # news of a cancellation or a sale is never "the same state again"
        last = history.last_sent.get(change.event_id)
        return cooldown(
            change.current,
            claim.cooldown,
            None if last is None else LastSent(*last),
            history.newest_pending.get(change.event_id, claim.delivery.id) != claim.delivery.id,
            now,
        )

    def _start(self, route: Route, members: list[Delivery]) -> None:
        first, *rest = members
        message = replace(first, group=tuple(d.change for d in rest))
        ids = [d.id for d in members]
        self._queued[first.notifier].update(ids)
        task = asyncio.create_task(self._deliver(route, message, ids))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def drain(self) -> None:
        """Wait until every send in flight has finished and been recorded, and the retries
        of a receiver that answered again are due."""
        while (
            self._sends
            or self._returns
            or (self._recording is not None and not self._recording.done())
        ):
            await asyncio.gather(*self._sends, return_exceptions=True)
            if self._recording is not None:
                await asyncio.gather(self._recording, return_exceptions=True)
            await asyncio.gather(*self._returns, return_exceptions=True)

    async def aclose(self) -> None:
        for task in [*self._returns, *self._sends]:
            with contextlib.suppress(Exception):
                await finish(task)
        if self._recording is not None:
            await asyncio.gather(self._recording, return_exceptions=True)

    async def _deliver(self, route: Route, delivery: Delivery, members: list[str]) -> None:
        """Send one message; `members` are the IDs of the deliveries it carries."""
        log = {
            "notifier": delivery.notifier,
            "event_id": delivery.change.event_id,
            "delivery_id": delivery.id,
        }
        async with self._gates[delivery.notifier]:
            delivery = replace(delivery, attempted_at=self._clock())
            try:
                answer = await route.notifier.send(delivery)
            except DeliveryError as exc:
                error = exc
            except Exception as exc:
                # A notifier bug must not lose the delivery: record it, retry like any failure.
                logger.exception(
                    "notifier %s crashed while sending about %s",
                    delivery.notifier,
                    _about(delivery),
                    extra=log,
                )
                error = DeliveryError(f"{type(exc).__name__}: {exc}")
            else:
                logger.debug(
                    "delivered %s about %s to %s: %s",
                    delivery.id,
                    _about(delivery),
                    delivery.notifier,
                    answer,
                    extra=log,
                )
                now = self._clock()
                self._record(
                    delivery.notifier, [Attempt(i, now, Outcome.DELIVERED) for i in members]
                )
                if delivery.notifier in self._failing:
                    self.returned(delivery.notifier)
                return
        self._failing.add(delivery.notifier)
        self._record(delivery.notifier, self._failed(route, delivery, members, error, log))

    def _failed(
        self,
        route: Route,
        delivery: Delivery,
        members: list[str],
        error: DeliveryError,
        log: dict[str, str],
    ) -> list[Attempt]:
        now = self._clock()
        message = redact(str(error))
        next_at = now + retry_delay(
            delivery.attempt, route.retry.backoff, retry_after=error.retry_after, rng=self._rng
        )
        created_at = delivery.change.observed_at
        if error.retryable and not gives_up(created_at, now, next_at, route.retry.give_up_after):
            logger.warning(
                "delivery %s about %s to %s failed (attempt %d): %s; next try in %.0fs",
                delivery.id,
                _about(delivery),
                delivery.notifier,
                delivery.attempt,
                message,
                next_at - now,
                extra=log,
            )
            outcome = Outcome.FAILED
        else:
            why = "gave up after retrying" if error.retryable else "permanent failure"
            logger.error(
                "delivery %s about %s to %s is dead (%s): %s",
                delivery.id,
                _about(delivery),
                delivery.notifier,
                why,
                message,
                extra=log,
            )
            outcome = Outcome.DEAD
        return [Attempt(i, now, outcome, error.status, message, next_at) for i in members]

    def _record(self, notifier: str, attempts: list[Attempt]) -> None:
        self._outcomes.extend((notifier, attempt) for attempt in attempts)
        for attempt in attempts:
            self._metrics.deliveries.labels(notifier, attempt.outcome).inc()
        if self._recording is None or self._recording.done():
            self._recording = asyncio.create_task(self._write_outcomes())

    async def _write_outcomes(self) -> None:
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            try:
                await self._outbox.record_attempts([attempt for _, attempt in batch])
            except Exception:
                # The claims stand until their leases end; then the deliveries come due again.
                logger.exception("could not record %d delivery attempts", len(batch))
            for notifier, attempt in batch:
                self._queued[notifier].discard(attempt.delivery_id)
            self.wake()


def _managed(route: Route, claim: Claimed) -> bool:
    """Whether only the latest state of the event goes out, and only if it is new: with a
    cooldown, with quiet hours, and for what a snooze held back."""
    snoozed = claim.snoozed_until
    held = snoozed is not None and claim.delivery.change.observed_at <= snoozed
    return claim.cooldown > 0 or route.quiet_hours is not None or held


def _about(delivery: Delivery) -> str:
    """The event a delivery is about, as a person knows it: its name, then its ID."""
    change = delivery.change
    more = f" and {len(delivery.group)} more" if delivery.group else ""
    name = f"{change.event_name} ({change.event_id})" if change.event_name else change.event_id
    return f"{name}{more}"
