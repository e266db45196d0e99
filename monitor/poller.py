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

from monitor.detect import Rules, detect, is_unchanged, reading_of
from monitor.errors import UpstreamError
from monitor.models import Answer, Availability, EventState, Reading
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
        self._reported_values: set[str] = set()

    async def run_cycle(self) -> CycleStats:
        """Poll every event that is due now; returns what the cycle did."""
        stats = CycleStats()
        writer = _GroupWriter(self._repository, self._on_changes)
        gate = asyncio.Semaphore(self._max_in_flight)
        chunk = self._batch_size * self._max_in_flight * 4
        while True:
            claimed_at, token = self._clock(), new_id()
            claimed = await self._repository.claim_due(
                claimed_at, chunk, claimed_at + self._lease, token
            )
            if not claimed:
                break
            states = [state for state in claimed if state.event_id in self.watchlist]
            batches = [
                {state.event_id: state for state in states[i : i + self._batch_size]}
                for i in range(0, len(states), self._batch_size)
            ]
            await asyncio.gather(
                *(self._poll(batch, claimed_at, gate, writer, stats) for batch in batches)
            )
            # Every event of the claim not written yet was read unchanged.
            writer.submit(PollWrite(settled=[(token, claimed_at)]))
            if len(claimed) < chunk:
                break
        await writer.flush()
        if stats.requests:
            logger.debug(
                "cycle: %d requests (%d failed), %d observations, %d changes",
                stats.requests,
                stats.failed_requests,
                stats.observations,
                stats.changes,
            )
        return stats

    async def _poll(
        self,
        states: dict[str, EventState],
        claimed_at: float,
        gate: asyncio.Semaphore,
        writer: _GroupWriter,
        stats: CycleStats,
    ) -> None:
        async with gate:
            stats.requests += 1
            try:
                answers = await self._client.fetch(list(states))
            except UpstreamError as exc:
                stats.failed_requests += 1
                self._note_failure(exc)
                writer.submit(PollWrite(unread=self._due_times(states, claimed_at)))
                return
        self._note_success()
        write = self._evaluate(states, answers, claimed_at, self._clock())
        stats.observations += len(answers)
        stats.changes += len(write.changes)
        if write.updated or write.unread:
            writer.submit(write)

    def _evaluate(
        self,
        states: dict[str, EventState],
        answers: list[Answer],
        claimed_at: float,
        now: float,
    ) -> PollWrite:
        """Apply the rules to one batch's answers; `states` keeps the events left unread.

        Unchanged events need no write here: settling the claim refreshes them all at once.
        """
        write = PollWrite()
        rules, watchlist = self._rules, self.watchlist
        for answer in answers:
            state = states.pop(answer.event_id)
            if is_unchanged(state, answer, now, rules):
                continue
            watch = watchlist[answer.event_id]
            reading = reading_of(answer)
            if reading.status is None or reading.resale_status is None:
                self._report_undocumented(answer, reading)
            verdict = detect(state, reading, now, rules)
            current = verdict.current
            write.updated.append(
                {
                    "b_event_id": answer.event_id,
                    "b_status": current and current.status.value,
                    "b_resale_status": current and current.resale_status.value,
                    "b_unknown_streak": verdict.unknown_streak,
                    "b_seen_at": now,
                    "b_changed_at": now if verdict.changed else None,
                    "b_snapshot_at": now if verdict.snapshot else None,
                    "b_due_at": claimed_at + watch.interval,
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
            write.unread = self._due_times(states, claimed_at)
        return write

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


class _GroupWriter:
    """Writes batch results: at once while the database is idle, together while it is busy.

    Many fast answers then cost one transaction instead of one each, while a lone answer
    (and its changes) is committed without waiting for the rest of the cycle.
    """

    def __init__(self, repository: Repository, on_changes: Callable[[], None]) -> None:
        self._repository = repository
        self._on_changes = on_changes
        self._pending: PollWrite | None = None
        self._writing: asyncio.Task[None] | None = None

    def submit(self, write: PollWrite) -> None:
        if self._pending is None:
            self._pending = write
        else:
            self._pending.merge(write)
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._drain())

    async def flush(self) -> None:
        while self._writing is not None and not self._writing.done():
            await self._writing
        if self._writing is not None:
            self._writing.result()  # re-raise a failed write

    async def _drain(self) -> None:
        while self._pending is not None:
            write, self._pending = self._pending, None
            await self._repository.save_poll(write)
            if write.changes:
                self._on_changes()


def new_id() -> str:
    return uuid.uuid4().hex
