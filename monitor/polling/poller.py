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
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping

from monitor.metrics import Metrics
from monitor.models import EventState, new_id
from monitor.polling.cache import StateCache, States
from monitor.polling.detect import Rules
from monitor.polling.pieces import Joins, cut
from monitor.polling.recorder import Recorder
from monitor.polling.turn import (
    CycleStats,
    Fetcher,
    RetryPolicy,
    Turn,
    next_due,
    unpolled,
)
from monitor.polling.watchlist import Watch, Watchlist
from monitor.polling.writer import GroupWriter
from monitor.store.records import BatchKey, ClaimedBatch, PollWrite
from monitor.store.repository import Repository
from monitor.times import iso
from monitor.upstream.health import Upstream
from monitor.upstream.inventory import InventoryClient

logger = logging.getLogger(__name__)

__all__ = ["FOLLOW_EVERY", "CycleStats", "Poller", "RetryPolicy"]

FOLLOW_EVERY = 5.0
"""Seconds between looks for watch writes made elsewhere (the command line, another
replica): a watch added there is polled within this of being written. Writes through this
process's own API apply at once."""
LOOK_EVERY = 5.0
"""Seconds between looks at the database for due batches that this process cannot know of
(released by a replica gone silent, brought forward by another): in between, a tick with
nothing known to be due claims nothing."""
DUE_UNKNOWN = -math.inf
"""A next due time not known: the next tick looks."""


class Poller:
    def __init__(
        self,
        repository: Repository,
        client: InventoryClient,
        watchlist: Mapping[str, Watch],
        *,
        rules: Rules,
        unit_size: int,
        max_in_flight: int,
        lease: float,
        notify_baseline: bool,
        clock: Callable[[], float],
        upstream: Upstream,
        retry: RetryPolicy = RetryPolicy(),
        rng: random.Random | None = None,
        metrics: Metrics | None = None,
        on_changes: Callable[[], None] = lambda: None,
        before_claim: Callable[[], Awaitable[None]] | None = None,
        follow_every: float = FOLLOW_EVERY,
    ) -> None:
        self._repository = repository
        self._client = client
        self.watchlist = Watchlist(watchlist)
        self._unit_size = unit_size
        self._max_in_flight = max_in_flight
        self._lease = lease
        self._clock = clock
        self._upstream = upstream
        self._metrics = metrics or Metrics()
        self._on_changes = on_changes
        self._before_claim = before_claim
        """Runs before a cycle claims anything: the watchlist catches up with writes made
        elsewhere (the CLI, another replica), so no batch is polled without a member just
        added to it."""
        self._follow_every = follow_every
        self._cache = StateCache(rules)
        """The batches' states as this process last read or wrote them, and what the fast
        paths ask of them."""
        self._recorder = Recorder(
            self.watchlist,
            self._cache,
            rules,
            notify_baseline=notify_baseline,
            metrics=self._metrics,
        )
        self._fetcher = Fetcher(
            lambda: self._client,
            lambda: self.request_size,
            recorder=self._recorder,
            cache=self._cache,
            clock=clock,
            retry=retry,
            rng=rng or random.Random(),
            metrics=self._metrics,
        )
        self._next_due = DUE_UNKNOWN
        """When the next batch is due, as the last claim read it and this process's own
        writes since moved it; +inf when there is no batch."""
        self._looked_at = -math.inf
        self._followed_at = -math.inf

    def replace_watchlist(self, watchlist: Mapping[str, Watch]) -> None:
        """A reloaded watchlist: the sync moved events between batches, so no cached state
        is trusted any more, and bursts start again from their own batches. A cycle in
        flight finishes with the states it claimed (see `run_cycle`)."""
        self.watchlist.replace(watchlist)
        self._cache.forget()
        self._next_due = DUE_UNKNOWN

    def set_watch(self, event_id: str, watch: Watch | None) -> None:
        """One event watched anew, watched otherwise, or (None) no longer watched.

        Nothing cached is dropped: the store moved the version of every batch the event
        joined or left, so those batches' states are read again at their next claim. A
        cycle in flight keeps the states it claimed; an answer for an event no longer
        watched is dropped there, and an event just added is polled from the next claim.
        """
        self._next_due = DUE_UNKNOWN  # the store may have made a batch due now for it
        self.watchlist.set(event_id, watch)

    async def burst(self, bursting: Mapping[str, float], interval: float) -> None:
        """Poll `bursting` events every `interval` until their bursts end, and the events
        whose bursts have ended at their own intervals again; the moves happen after the
        cycle, as for a change of interval by status."""
        moves = self._recorder.moves
        bursts = self.watchlist.burst(bursting, interval)
        for event_id, fastest in bursts.entering.items():
            watch = self.watchlist[event_id]
            moves[event_id] = BatchKey(fastest, watch.partition)
            logger.info(
                "%s: polled every %gs until %s, around a sale opening",
                watch.name or event_id,
                fastest,
                iso(bursting[event_id]),
            )
        if bursts.leaving:
            standings = await self._repository.standings(bursts.leaving)
            for event_id in bursts.leaving:
                still = self.watchlist.get(event_id)
                if still is not None:  # not removed meanwhile
                    status, invalid = standings.get(event_id, (None, False))
                    moves[event_id] = still.key_for(status, invalid=invalid)
        if moves:
            self._next_due = DUE_UNKNOWN  # the next tick moves them

    def use_client(self, client: InventoryClient, *, unit_size: int, max_in_flight: int) -> None:
        """New upstream settings (a reloaded config): the next requests use them."""
        self._client = client
        self._unit_size = unit_size
        self._max_in_flight = max_in_flight
        self._next_due = DUE_UNKNOWN

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @property
    def shortest_interval(self) -> float:
        """The shortest interval any watched event may be polled at (by status, or in a
        burst, included): how long the ticker may gather due batches depends on it."""
        return self.watchlist.shortest

    @property
    def request_size(self) -> int:
        """The most IDs a request carries now, the URL's length allowing."""
        return self._client.capacity(self.watchlist.id_bytes)

    async def next_due(self) -> float | None:
        """When the next batch is due: as the last cycle left it, or by the database; and
        not before held requests may go out again."""
        if self._next_due == DUE_UNKNOWN:
            self._next_due = _known(await self._repository.next_due_at())
            self._looked_at = self._clock()
        held_until = self._upstream.held_until()
        due = self._next_due if held_until is None else max(self._next_due, held_until)
        return None if due == math.inf else due

    async def run_cycle(self) -> CycleStats:
        """Poll every batch that is due now; returns what the cycle did."""
        stats = CycleStats()
        now = self._clock()
        if self._before_claim is not None and now - self._followed_at >= self._follow_every:
            self._followed_at = now
            await self._before_claim()
        worth_a_look = now >= self._next_due or now - self._looked_at >= LOOK_EVERY
        if self._upstream.held_until() is not None or not worth_a_look:
            return stats
        writer = GroupWriter(self._repository, self._on_changes)
        try:
            soonest = await self._claim_and_poll(writer, stats)
            status = self._upstream.pending_save()
            if status is not None:
                writer.submit(PollWrite(upstream=status))  # in the cycle's last transaction
            await writer.flush()
            self._next_due = min(_known(soonest), writer.soonest)
            await self._after_cycle()
        except BaseException:
            # A write may have failed after the cache took it in: trust only the database.
            self._cache.forget()
            self._recorder.moves.clear()
            self._next_due = DUE_UNKNOWN
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

    async def _claim_and_poll(self, writer: GroupWriter, stats: CycleStats) -> float | None:
        """Claim a few rounds of requests at a time, and poll them, until none is due;
        returns when the next batch is due, as the last claim read it."""
        gate = asyncio.Semaphore(self._max_in_flight)
        # Few transactions, little bubble; and no more than the pacing lets out well within
        # the lease: a quota paced to one request a minute claims one batch at a time.
        chunk = min(self._max_in_flight * 4, self._client.sendable(self._lease / 2))
        while True:
            claimed_at = self._clock()
            size = self.request_size
            requests, soonest = await self._repository.claim_due(
                claimed_at, chunk, claimed_at + self._lease, size
            )
            self._looked_at = claimed_at
            # The cycle's own view of the claimed batches: a write to the watchlist
            # meanwhile may drop the cache, never the states this cycle works on.
            view = await self._load_states([b for request in requests for b in request])
            pollable = self._pollables(requests, view, claimed_at, writer)
            pieces = cut(
                [
                    [(batch, pollable[batch.id]) for batch in request if pollable[batch.id]]
                    for request in requests
                ],
                size,
            )
            turn = Turn(view, pollable, claimed_at, Joins.of(pieces), gate, writer, stats, size)
            await asyncio.gather(*(self._fetcher.poll(piece, turn) for piece in pieces))
            if len(pieces) < chunk:
                return soonest

    async def _after_cycle(self) -> None:
        now = self._clock()
        if self._recorder.moves:
            moves, self._recorder.moves = self._recorder.moves, {}
            await self._repository.rehome(moves, self._unit_size, now, new_id)
            self._next_due = DUE_UNKNOWN
        if self._upstream.pop_recovered():
            await self._repository.expedite(now, self._lease)
            self._next_due = DUE_UNKNOWN

    async def _load_states(self, claimed: list[ClaimedBatch]) -> States:
        """The member states of `claimed`, read again for the batches whose cached copy is
        missing or outdated.

        Batch versions move with every write of a member's state or of a membership, by any
        replica, so in the steady state a poll reads no event rows at all.
        """
        view: States = {}
        stale: list[ClaimedBatch] = []
        cache = self._cache
        for batch in claimed:
            cached = cache.fresh(batch)
            if cached is not None:
                view[batch.id] = cached
            else:
                stale.append(batch)
        if not stale:
            return view
        loaded = await self._repository.load_states([batch.id for batch in stale])
        watches = self.watchlist.watches
        for batch in stale:
            own = _own_ids(loaded[batch.id], watches)
            view[batch.id] = cache.remember(batch.id, batch.version, own, watches)
        return view

    def _pollables(
        self,
        requests: list[list[ClaimedBatch]],
        view: States,
        claimed_at: float,
        writer: GroupWriter,
    ) -> dict[str, dict[str, EventState]]:
        """The events to ask for, by batch; a batch with none is not polled this time."""
        pollable: dict[str, dict[str, EventState]] = {}
        for batch in (batch for request in requests for batch in request):
            pollable[batch.id] = self._pollable(batch.id, view[batch.id][1], claimed_at)
            if not pollable[batch.id]:
                writer.submit(unpolled(batch, next_due(batch, claimed_at)))
        return pollable

    def _pollable(
        self, batch_id: str, members: dict[str, EventState], now: float
    ) -> dict[str, EventState]:
        """The members still watched and not past their `until` (the cached dict itself, in
        the usual case that this is all of them)."""
        if not self.watchlist.until_any and self._cache.all_watched(batch_id):
            return members
        watches = self.watchlist.watches
        states = {}
        for event_id, state in members.items():
            watch = watches.get(event_id)
            if watch is None:
                continue
            if watch.until is not None and now >= watch.until:
                self._recorder.until_passed(event_id)
                continue
            states[event_id] = state
        return states


def _known(due: float | None) -> float:
    """A due time read from the database, +inf for "no batch at all"."""
    return math.inf if due is None else due


def _own_ids(states: dict[str, EventState], watches: dict[str, Watch]) -> dict[str, EventState]:
    """`states` keyed by the watchlist's own ID strings: the copies the database hands out
    would cost another 6 MB for every 100,000 events cached."""
    own: dict[str, EventState] = {}
    for event_id, state in states.items():
        watch = watches.get(event_id)
        own[event_id if watch is None else watch.event_id] = state
    return own
