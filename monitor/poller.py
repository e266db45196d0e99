"""One poll cycle: claim due events, fetch them in batches, detect changes, store them.

Workers (at most `max_in_flight`) each claim a batch of due events, fetch it, and write
everything it changed in one transaction: refreshed last-seen times, new states,
snapshots, changes and one outbox delivery per change and notifier. A failed request
writes nothing but the next due time.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from monitor.detect import Rules, detect
from monitor.errors import UpstreamError
from monitor.models import Availability, EventState, Reading
from monitor.store.repository import PollWrite, Repository
from monitor.ticketmaster import InventoryClient

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Watch:
    """What the poller needs to know about one watched event."""

    event_id: str
    name: str | None
    interval: float
    targets: tuple[str, ...]


@dataclass(slots=True)
class CycleStats:
    requests: int = 0
    failed_requests: int = 0
    observations: int = 0
    unread: int = 0
    changes: int = 0


@dataclass(slots=True)
class _Failures:
    """The current streak of failed requests, so a failure logs once, not once per batch."""

    streak: int = 0


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
        self._on_changes = on_changes
        self._failures = _Failures()

    async def run_cycle(self) -> CycleStats:
        """Poll every event that is due now; returns what the cycle did."""
        stats = CycleStats()
        workers = [self._worker(stats) for _ in range(self._max_in_flight)]
        await asyncio.gather(*workers)
        if stats.observations:
            logger.debug(
                "cycle: %d requests (%d failed), %d observations, %d changes",
                stats.requests,
                stats.failed_requests,
                stats.observations,
                stats.changes,
            )
        return stats

    async def _worker(self, stats: CycleStats) -> None:
        while True:
            now = self._clock()
            claimed = await self._repository.claim_due(now, self._batch_size, now + self._lease)
            if not claimed:
                return
            states = {
                state.event_id: state for state in claimed if state.event_id in self.watchlist
            }
            stats.requests += 1
            try:
                readings = await self._client.fetch(list(states))
            except UpstreamError as exc:
                stats.failed_requests += 1
                self._note_failure(exc)
                await self._repository.set_due(self._due_times(states, self._clock()))
                continue
            self._note_success()
            write = self._evaluate(states, readings, self._clock(), stats)
            await self._repository.save_poll(write)
            if write.changes:
                self._on_changes()

    def _evaluate(
        self, states: dict[str, EventState], readings: list[Reading], now: float, stats: CycleStats
    ) -> PollWrite:
        write = PollWrite(now=now)
        rules, watchlist = self._rules, self.watchlist
        for reading in readings:
            state = states.pop(reading.event_id)
            watch = watchlist[reading.event_id]
            due_at = now + watch.interval
            verdict = detect(state, reading, now, rules)
            if not verdict.dirty(state):
                write.refreshed.setdefault(due_at, []).append(reading.event_id)
                continue
            current = verdict.current
            write.updated.append(
                {
                    "b_event_id": reading.event_id,
                    "b_status": current and current.status.value,
                    "b_resale_status": current and current.resale_status.value,
                    "b_unknown_streak": verdict.unknown_streak,
                    "b_seen_at": now,
                    "b_changed_at": now if verdict.changed else None,
                    "b_snapshot_at": now if verdict.snapshot else None,
                    "b_due_at": due_at,
                }
            )
            if current is None:
                continue
            if verdict.snapshot:
                write.snapshots.append(
                    {
                        "event_id": reading.event_id,
                        "status": current.status.value,
                        "resale_status": current.resale_status.value,
                        "observed_at": now,
                    }
                )
            if verdict.changed or (verdict.baseline and self._notify_baseline):
                self._record_change(write, watch, state.current, current, now)
        stats.observations += len(readings)
        stats.changes += len(write.changes)
        if states:
            stats.unread += len(states)
            sample = ", ".join(sorted(states)[:5])
            logger.warning(
                "the answer left out %d requested events (%s); they count as not polled",
                len(states),
                sample,
            )
            write.unread = self._due_times(states, now)
        return write

    @staticmethod
    def _record_change(
        write: PollWrite,
        watch: Watch,
        previous: Availability | None,
        current: Availability,
        now: float,
    ) -> None:
        change_id = new_id()
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
                "notifier": target,
                "state": "pending",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
            for target in watch.targets
        )

    def _due_times(self, event_ids: Mapping[str, EventState], now: float) -> dict[float, list[str]]:
        due: dict[float, list[str]] = {}
        for event_id in event_ids:
            due.setdefault(now + self.watchlist[event_id].interval, []).append(event_id)
        return due

    def _note_failure(self, error: UpstreamError) -> None:
        failures = self._failures
        failures.streak += 1
        if failures.streak == 1:
            logger.error("polling failed: %s (no change is assumed while it fails)", error)
        else:
            logger.debug("polling still failing (%d requests): %s", failures.streak, error)

    def _note_success(self) -> None:
        if self._failures.streak:
            logger.info("polling recovered after %d failed requests", self._failures.streak)
            self._failures.streak = 0


def new_id() -> str:
    return uuid.uuid4().hex
