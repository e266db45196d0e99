"""Batch results to the store in few transactions, without delaying a single change."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable

from monitor.store.records import PollWrite
from monitor.store.repository import Repository


class GroupWriter:
    """Writes batch results in few transactions without delaying a single change.

    A result with changes is written at once, with whatever else is waiting. Results with
    nothing new (just "this batch was polled") wait up to `linger` to share a transaction
    with the next ones; the end of a cycle flushes them. No more than about `max_rows`
    event rows wait at a time: past that they are written at once, and `room` holds up
    new requests until they are, so a cycle over 100,000 baselines never holds them all.
    """

    def __init__(
        self,
        repository: Repository,
        on_changes: Callable[[], None],
        linger: float = 0.5,
        max_rows: int = 5000,
    ) -> None:
        self._repository = repository
        self._on_changes = on_changes
        self._linger = linger
        self._max_rows = max_rows
        self._pending: PollWrite | None = None
        self._pending_rows = 0
        self._writing: asyncio.Task[None] | None = None
        self._urgent = asyncio.Event()
        self._written = asyncio.Event()
        self.soonest = math.inf
        """The soonest next due time of the batches submitted: the poller's next wake
        without reading the database again."""

    async def room(self) -> None:
        """Wait while too many rows wait to be written."""
        while self._pending_rows >= self._max_rows:
            if self._writing is None or self._writing.done():
                return  # a failed write: the cycle's flush raises it
            self._urgent.set()
            await self._written.wait()

    def submit(self, write: PollWrite) -> None:
        for polled in write.polled:
            self.soonest = min(self.soonest, polled.next_due)
        for postponed in write.postponed:
            self.soonest = min(self.soonest, postponed.next_due)
        if self._pending is None:
            self._pending = write
        else:
            self._pending.merge(write)
        self._pending_rows += len(write.updated) + len(write.unread) + len(write.snapshots)
        if write.changes or self._pending_rows >= self._max_rows:
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
            self._pending_rows = 0
            try:
                await self._repository.save_poll(write)
            finally:
                self._written.set()
                self._written.clear()
            if write.changes:
                self._on_changes()
