"""One poll cycle: claim due events, fetch them in batches, detect changes, store them.

Workers (at most `max_in_flight`) each claim a batch of due events, fetch it, and write
everything it changed in one transaction: refreshed last-seen times, new states,
snapshots, changes and one outbox delivery per change and notifier. A failed request
writes nothing but the batch's next due time, drawn with exponential backoff and full
jitter, so a failing batch is retried soon, then less and less often, without holding up
the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from monitor.backoff import exponential_delay
from monitor.config import Rule
from monitor.errors import Held, RateLimited, UpstreamError
from monitor.metrics import Metrics
from monitor.models import Answer, Availability, EventState, Reading, Status
from monitor.notify.routing import routed
from monitor.polling.batching import BatchKey
from monitor.polling.detect import Rules, detect, is_unchanged, reading_of
from monitor.store.repository import ClaimedBatch, PollWrite, Repository
from monitor.upstream.client import InventoryClient
from monitor.upstream.health import Upstream

logger = logging.getLogger(__name__)


class Target(NamedTuple):
    """A notifier that may hear of an event, and how."""

    notifier: str
    rule_sets: tuple[tuple[Rule, ...], ...] = ()
    hold: float = 0.0
    """Seconds a delivery waits for others to group with (the notifier's group_window)."""
    cooldown: float = 0.0


@dataclass(frozen=True, slots=True)
class Watch:
    """What the poller needs to know about one watched event."""

    event_id: str
    name: str | None
    interval: float
    targets: tuple[Target, ...]
    partition: str = ""
    interval_by_status: Mapping[Status, float] = field(default_factory=dict)
    until: float | None = None
    """No polls after this time (epoch seconds)."""

    def key_for(self, current: Availability | None) -> BatchKey:
        """The batch this event belongs in while `current` is its accepted availability."""
        interval = self.interval
        if current is not None:
            interval = self.interval_by_status.get(current.status, interval)
        return BatchKey(interval, self.partition)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for failed batches: the first retry within `initial`, doubling to `maximum`."""

    initial: float = 2.0
    maximum: float = 300.0


@dataclass(slots=True)
class CycleStats:
    requests: int = 0
    failed_requests: int = 0
    observations: int = 0
    changes: int = 0


class Poller:
    def __init__(
        self,
        repository: Repository,
        client: InventoryClient,
        watchlist: Mapping[str, Watch],
        *,
        rules: Rules,
        batch_size: int,
        max_in_flight: int,
        lease: float,
        notify_baseline: bool,
        clock: Callable[[], float],
        upstream: Upstream,
        retry: RetryPolicy = RetryPolicy(),
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        on_changes: Callable[[], None] = lambda: None,
    ) -> None:
        self._repository = repository
        self._client = client
        self.watchlist = dict(watchlist)
        self._rules = rules
        self._batch_size = batch_size
        self._max_in_flight = max_in_flight
        self._lease = lease
        self._notify_baseline = notify_baseline
        self._clock = clock
        self._upstream = upstream
        self._retry = retry
        self._rng = rng or random.Random()
        self._metrics = metrics or Metrics()
        self._on_changes = on_changes
        self._reported_values: set[str] = set()
        self._reported_events: set[str] = set()
        """Events already reported as probably invalid, or as past their `until`."""
        self._moves: dict[str, BatchKey] = {}
        """Events whose new status wants another interval, moved after the cycle."""
        self._windows: dict[str, float] = {}
        """Notifier to the time its open group window closes."""
        self._states: dict[str, tuple[int, dict[str, EventState]]] = {}
        """Batch ID to (version, member states) as this process last read or wrote them."""

    def replace_watchlist(self, watchlist: Mapping[str, Watch]) -> None:
        """A reloaded watchlist: the sync moved events between batches, so no cached state
        is trusted any more."""
        self.watchlist = dict(watchlist)
        self._states.clear()

    def use_client(self, client: InventoryClient, *, batch_size: int, max_in_flight: int) -> None:
        """New upstream settings (a reloaded config): the next requests use them."""
        self._client = client
        self._batch_size = batch_size
        self._max_in_flight = max_in_flight

    async def run_cycle(self) -> CycleStats:
        """Poll every batch that is due now; returns what the cycle did."""
        stats = CycleStats()
        if self._upstream.held_until() is not None:
            return stats
        writer = _GroupWriter(self._repository, self._on_changes)
        gate = asyncio.Semaphore(self._max_in_flight)
        # Claim a few rounds of requests at a time: few transactions, little bubble.
        chunk = self._max_in_flight * 4
        try:
            while True:
                claimed_at = self._clock()
                claimed = await self._repository.claim_due(
                    claimed_at, chunk, claimed_at + self._lease
                )
                await self._load_states(claimed)
                await asyncio.gather(
                    *(self._poll(batch, claimed_at, gate, writer, stats) for batch in claimed)
                )
                if len(claimed) < chunk:
                    break
            await writer.flush()
            await self._after_cycle()
        except BaseException:
            # A write may have failed after the cache took it in: trust only the database.
            self._states.clear()
            self._moves.clear()
            raise
        if stats.requests:
            logger.debug(
                "cycle: %d requests (%d failed), %d observations, %d changes",
                stats.requests,
                stats.failed_requests,
                stats.observations,
                stats.changes,
            )
        return stats

    async def _after_cycle(self) -> None:
        now = self._clock()
        if self._moves:
            moves, self._moves = self._moves, {}
            await self._repository.rehome(moves, self._batch_size, now, new_id)
        if self._upstream.pop_recovered():
            await self._repository.expedite(now, self._lease)
        status = self._upstream.pending_save()
        if status is not None:
            await self._repository.save_upstream(status)

    async def _load_states(self, claimed: list[ClaimedBatch]) -> None:
        """Read member states of the batches whose cached copy is missing or outdated.

        Batch versions move with every write of a member's state, by any replica, so in
        the steady state a poll reads no event rows at all.
        """
        stale = [
            batch.id
            for batch in claimed
            if self._states.get(batch.id, (None, None))[0] != batch.version
        ]
        if not stale:
            return
        loaded = await self._repository.load_states(stale)
        versions = {batch.id: batch.version for batch in claimed}
        for batch_id in stale:
            self._states[batch_id] = (versions[batch_id], loaded[batch_id])

    async def _poll(
        self,
        batch: ClaimedBatch,
        claimed_at: float,
        gate: asyncio.Semaphore,
        writer: _GroupWriter,
        stats: CycleStats,
    ) -> None:
        next_due = claimed_at + batch.interval
        members = self._states[batch.id][1]
        states = self._pollable(members, claimed_at)
        if not states:
            writer.submit(PollWrite(postponed=[_postponed(batch, next_due)]))
            return
        async with gate:
            try:
                answers = await self._client.fetch(list(states))
            except Held:
                # No cycle claims anything while requests are held, so the batch keeps its
                # schedule: when the hold ends (or a replaced key lifts it), it is due.
                writer.submit(PollWrite(postponed=[_postponed(batch, next_due)]))
                return
            except UpstreamError as exc:
                stats.requests += 1
                stats.failed_requests += 1
                self._metrics.polls_failed.inc()
                writer.submit(PollWrite(postponed=[self._retry_of(batch, exc)]))
                return
        stats.requests += 1
        self._metrics.polls_ok.inc()
        now = self._clock()
        write, revised = self._evaluate(states, answers, now, batch)
        metrics = self._metrics
        metrics.updated.inc(len(write.updated))
        metrics.missing.inc(len(write.unread))
        metrics.unchanged.inc(len(answers) - len(write.updated))
        version = batch.version + 1 if revised else batch.version
        if revised:
            self._states[batch.id] = (version, {**members, **revised})
        write.polled.append(
            {"b_id": batch.id, "b_polled_at": now, "b_due": next_due, "b_version": version}
        )
        stats.observations += len(answers)
        stats.changes += len(write.changes)
        writer.submit(write)

    def _pollable(self, members: dict[str, EventState], now: float) -> dict[str, EventState]:
        """The members still watched and not past their `until`."""
        states = {}
        for event_id, state in members.items():
            watch = self.watchlist.get(event_id)
            if watch is None:
                continue
            if watch.until is not None and now >= watch.until:
                if event_id not in self._reported_events:
                    self._reported_events.add(event_id)
                    logger.info(
                        "event %s: its `until` time has passed; it is no longer polled",
                        event_id,
                        extra={"event_id": event_id},
                    )
                continue
            states[event_id] = state
        return states

    def _retry_of(self, batch: ClaimedBatch, error: UpstreamError) -> dict[str, object]:
        """The failed batch's next due time: backoff, and never before a Retry-After."""
        failures = batch.failures + 1
        retry_after = error.retry_after if isinstance(error, RateLimited) else None
        delay = exponential_delay(
            failures,
            self._retry.initial,
            self._retry.maximum,
            retry_after=retry_after,
            rng=self._rng,
        )
        return {"b_id": batch.id, "b_due": self._clock() + delay, "b_failures": failures}

    def _evaluate(
        self,
        states: dict[str, EventState],
        answers: list[Answer],
        now: float,
        batch: ClaimedBatch,
    ) -> tuple[PollWrite, dict[str, EventState]]:
        """Apply the rules to one batch's answers; `states` keeps the events left unread.

        Returns the writes and the new states of the events whose rows they change. An
        event read unchanged needs no row write: its batch's poll time stands for it.
        """
        write = PollWrite()
        revised: dict[str, EventState] = {}
        rules, watchlist = self._rules, self.watchlist
        for answer in answers:
            state = states.pop(answer.event_id)
            if state.read_in_last_poll and is_unchanged(state, answer, now, rules):
                continue
            watch = watchlist[answer.event_id]
            reading = reading_of(answer)
            if reading.status is None or reading.resale_status is None:
                self._report_undocumented(answer, reading)
            elif reading.status is Status.UNKNOWN and state.current is None:
                self._report_probably_invalid(state)
            verdict = detect(state, reading, now, rules)
            current = verdict.current
            if watch.interval_by_status and (verdict.changed or verdict.baseline):
                key = watch.key_for(current)
                if key.interval != batch.interval:
                    self._moves[answer.event_id] = key
            snapshot_at = now if verdict.snapshot else state.last_snapshot_at
            revised[answer.event_id] = EventState(
                answer.event_id, current, verdict.unknown_streak, snapshot_at, True
            )
            write.updated.append(
                {
                    "b_event_id": answer.event_id,
                    "b_status": current and current.status.value,
                    "b_resale_status": current and current.resale_status.value,
                    "b_unknown_streak": verdict.unknown_streak,
                    "b_seen_at": now,
                    "b_changed_at": now if verdict.changed else None,
                    "b_snapshot_at": now if verdict.snapshot else None,
                }
            )
            if current is None:
                continue
            if verdict.snapshot:
                write.snapshots.append(
                    {
                        "event_id": answer.event_id,
                        "status": current.status.value,
                        "resale_status": current.resale_status.value,
                        "observed_at": now,
                    }
                )
            if verdict.changed or (verdict.baseline and self._notify_baseline):
                self._record_change(write, watch, state.current, current, now)
        if states:
            sample = ", ".join(sorted(states)[:5])
            logger.warning(
                "the answer left out %d requested events (%s); they count as not polled",
                len(states),
                sample,
            )
            # They were last seen when the batch was last read, if they were read then.
            for state in states.values():
                write.unread.append(
                    {
                        "b_event_id": state.event_id,
                        "b_seen_at": batch.last_polled_at if state.read_in_last_poll else None,
                    }
                )
                revised[state.event_id] = state._replace(read_in_last_poll=False)
        return write, revised

    def _report_undocumented(self, answer: Answer, reading: Reading) -> None:
        """Log each undocumented value once per process; it counts as no reading."""
        for raw, parsed in (
            (answer.status, reading.status),
            (answer.resale_status, reading.resale_status),
        ):
            text = repr(raw)
            if raw is None or parsed is not None or text in self._reported_values:
                continue
            self._reported_values.add(text)
            logger.warning(
                "event %s: undocumented status value %s is treated as no reading "
                "(reported once per value)",
                answer.event_id,
                text,
                extra={"event_id": answer.event_id},
            )

    def _report_probably_invalid(self, state: EventState) -> None:
        if state.unknown_streak or state.event_id in self._reported_events:
            return
        self._reported_events.add(state.event_id)
        logger.warning(
            "event %s: the API answered UNKNOWN on its first poll; probably an invalid "
            "event ID (check it on ticketmaster.com)",
            state.event_id,
            extra={"event_id": state.event_id},
        )

    def _send_at(self, target: Target, now: float) -> float:
        """When a new delivery to `target` is due: at once, or when its open group window
        (opened by the first change after the last one closed) closes."""
        if not target.hold:
            return now
        closes = self._windows.get(target.notifier, 0.0)
        if closes <= now:
            closes = self._windows[target.notifier] = now + target.hold
        return closes

    def _record_change(
        self,
        write: PollWrite,
        watch: Watch,
        previous: Availability | None,
        current: Availability,
        now: float,
    ) -> None:
        change_id = new_id()
        if previous is None or previous.status is not current.status:
            self._metrics.changes.labels("status", current.status.value).inc()
        if previous is None or previous.resale_status is not current.resale_status:
            self._metrics.changes.labels("resale_status", current.resale_status.value).inc()
        write.changes.append(
            {
                "id": change_id,
                "event_id": watch.event_id,
                "event_name": watch.name,
                "previous_status": previous and previous.status.value,
                "previous_resale_status": previous and previous.resale_status.value,
                "status": current.status.value,
                "resale_status": current.resale_status.value,
                "observed_at": now,
            }
        )
        write.deliveries.extend(
            {
                "id": new_id(),
                "change_id": change_id,
                "notifier": target.notifier,
                "state": "pending",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": self._send_at(target, now),
                "cooldown_s": target.cooldown,
            }
            for target in watch.targets
            if routed(target.rule_sets, previous, current)
        )


class _GroupWriter:
    """Writes batch results in few transactions without delaying a single change.

    A result with changes is written at once, with whatever else is waiting. Results with
    nothing new (just "this batch was polled") wait up to `linger` to share a transaction
    with the next ones; the end of a cycle flushes them.
    """

    def __init__(
        self, repository: Repository, on_changes: Callable[[], None], linger: float = 0.5
    ) -> None:
        self._repository = repository
        self._on_changes = on_changes
        self._linger = linger
        self._pending: PollWrite | None = None
        self._writing: asyncio.Task[None] | None = None
        self._urgent = asyncio.Event()

    def submit(self, write: PollWrite) -> None:
        if self._pending is None:
            self._pending = write
        else:
            self._pending.merge(write)
        if write.changes:
            self._urgent.set()
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._drain())

    async def flush(self) -> None:
        self._linger = 0.0
        self._urgent.set()
        while self._writing is not None and not self._writing.done():
            await self._writing
        if self._writing is not None:
            self._writing.result()  # re-raise a failed write

    async def _drain(self) -> None:
        while self._pending is not None:
            if not self._urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), self._linger)
            if self._linger:
                self._urgent.clear()
            write, self._pending = self._pending, None
            await self._repository.save_poll(write)
            if write.changes:
                self._on_changes()


def _postponed(batch: ClaimedBatch, due: float) -> dict[str, object]:
    return {"b_id": batch.id, "b_due": due, "b_failures": batch.failures}


def new_id() -> str:
    return uuid.uuid4().hex
