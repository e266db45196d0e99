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
from dataclasses import dataclass

from monitor.backoff import exponential_delay
from monitor.errors import Held, RateLimited, UpstreamError
from monitor.markets import request_kind
from monitor.metrics import Metrics
from monitor.models import Answer, Availability, Change, EventState, Status, new_id
from monitor.polling.cache import StateCache, States
from monitor.polling.detect import (
    Rules,
    Verdict,
    detail_kept,
    detect,
    is_unchanged,
    reading_of,
    repeats_detail,
)
from monitor.polling.news import deliveries_of
from monitor.polling.notes import Notes
from monitor.polling.pieces import Joins, Part, cut
from monitor.polling.watchlist import Watch
from monitor.polling.writer import GroupWriter
from monitor.store.records import (
    BatchKey,
    BatchPolled,
    BatchPostponed,
    ClaimedBatch,
    EventUnread,
    EventUpdate,
    NewSnapshot,
    PollWrite,
)
from monitor.store.repository import Repository
from monitor.times import iso
from monitor.upstream.health import Upstream
from monitor.upstream.inventory import Found, InventoryClient, Reply

logger = logging.getLogger(__name__)


FOLLOW_EVERY = 5.0
"""Seconds between looks for watch writes made elsewhere (the command line, another
replica): a watch added there is polled within this of being written. Writes through this
process's own API apply at once."""
LOOK_EVERY = 5.0
"""Seconds between looks at the database for due batches that this process cannot know of
(released by a replica gone silent, brought forward by another): in between, a tick with
nothing known to be due claims nothing."""
UNKNOWN = -math.inf
"""A next due time not known: the next tick looks."""


class CutTooLarge(Exception):
    """A request cut before a refusal shrank the size: sent, it would go out as a full
    request and a sliver, each spending a request. Its batches keep their due times, for the
    next claim to cut again."""


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


@dataclass(frozen=True, slots=True)
class Turn:
    """What the requests of one claim share: the states claimed and the events each batch
    asks for, when the claim was made, the batches carried in parts, and where it all goes."""

    view: States
    pollable: dict[str, dict[str, EventState]]
    claimed_at: float
    joins: Joins
    gate: asyncio.Semaphore
    writer: GroupWriter
    stats: CycleStats
    size: int
    """The request size the claim was cut to."""


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
        self.watchlist: dict[str, Watch] = (
            watchlist if isinstance(watchlist, dict) else dict(watchlist)
        )
        self._rules = rules
        self._unit_size = unit_size
        self._max_in_flight = max_in_flight
        self._lease = lease
        self._notify_baseline = notify_baseline
        self._clock = clock
        self._upstream = upstream
        self._retry = retry
        self._rng = rng or random.Random()
        self._metrics = metrics or Metrics()
        self._on_changes = on_changes
        self._before_claim = before_claim
        """Runs before a cycle claims anything: the watchlist catches up with writes made
        elsewhere (the CLI, another replica), so no batch is polled without a member just
        added to it."""
        self._follow_every = follow_every
        self._notes = Notes()
        self._id_bytes = _id_bytes(self.watchlist)
        self._until_any = _until_any(self.watchlist)
        self._shortest = _shortest(self.watchlist)
        self._moves: dict[str, BatchKey] = {}
        """Events whose new status wants another interval, moved after the cycle."""
        self._cache = StateCache(rules)
        """The batches' states as this process last read or wrote them, and what the fast
        paths ask of them."""
        self._bursting: dict[str, float] = {}
        """Events polled at the burst interval around a sale opening, and until when."""
        self._next_due = UNKNOWN
        """When the next batch is due, as the last claim read it and this process's own
        writes since moved it; +inf when there is no batch."""
        self._looked_at = -math.inf
        self._followed_at = -math.inf

    def replace_watchlist(self, watchlist: Mapping[str, Watch]) -> None:
        """A reloaded watchlist: the sync moved events between batches, so no cached state
        is trusted any more, and bursts start again from their own batches. A cycle in
        flight finishes with the states it claimed (see `run_cycle`)."""
        self.watchlist = watchlist if isinstance(watchlist, dict) else dict(watchlist)
        self._id_bytes = _id_bytes(self.watchlist)
        self._until_any = _until_any(self.watchlist)
        self._shortest = _shortest(self.watchlist)
        self._bursting.clear()
        self._cache.forget()
        self._next_due = UNKNOWN

    def set_watch(self, event_id: str, watch: Watch | None) -> None:
        """One event watched anew, watched otherwise, or (None) no longer watched.

        Nothing cached is dropped: the store moved the version of every batch the event
        joined or left, so those batches' states are read again at their next claim. A
        cycle in flight keeps the states it claimed; an answer for an event no longer
        watched is dropped there, and an event just added is polled from the next claim.
        """
        # The store may have made a batch due now for it.
        self._next_due = UNKNOWN
        if watch is None:
            self.watchlist.pop(event_id, None)
            self._bursting.pop(event_id, None)
            return
        self.watchlist[event_id] = watch
        # These only ever err on the safe side here (a longer ID, an `until`, a faster
        # interval stay counted after the watch goes); a reload recomputes them exactly.
        self._id_bytes = max(self._id_bytes, len(event_id) + 1)
        self._until_any = self._until_any or watch.until is not None
        self._shortest = min(self._shortest, _fastest(watch))

    async def burst(self, bursting: Mapping[str, float], interval: float) -> None:
        """Poll `bursting` events every `interval` until their bursts end, and the events
        whose bursts have ended at their own intervals again; the moves happen after the
        cycle, as for a change of interval by status."""
        watchlist = self.watchlist
        entering = [i for i in bursting if i not in self._bursting and i in watchlist]
        leaving = [i for i in self._bursting if i not in bursting and i in watchlist]
        for event_id in entering:
            watch = watchlist[event_id]
            # A burst never slows an event down that is polled faster anyway.
            fastest = min(interval, _fastest(watch))
            self._shortest = min(self._shortest, fastest)
            self._moves[event_id] = BatchKey(fastest, watch.partition)
            logger.info(
                "%s: polled every %gs until %s, around a sale opening",
                watch.name or event_id,
                fastest,
                iso(bursting[event_id]),
            )
        if leaving:
            standings = await self._repository.standings(leaving)
            for event_id in leaving:
                still = self.watchlist.get(event_id)
                if still is not None:  # not removed meanwhile
                    status, invalid = standings.get(event_id, (None, False))
                    self._moves[event_id] = still.key_for(status, invalid=invalid)
        self._bursting = {i: until for i, until in bursting.items() if i in self.watchlist}
        if self._moves:
            self._next_due = UNKNOWN  # the next tick moves them

    def use_client(self, client: InventoryClient, *, unit_size: int, max_in_flight: int) -> None:
        """New upstream settings (a reloaded config): the next requests use them."""
        self._client = client
        self._unit_size = unit_size
        self._max_in_flight = max_in_flight
        self._next_due = UNKNOWN

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @property
    def shortest_interval(self) -> float:
        """The shortest interval any watched event may be polled at (by status, or in a
        burst, included): how long the ticker may gather due batches depends on it."""
        return self._shortest

    @property
    def request_size(self) -> int:
        """The most IDs a request carries now, the URL's length allowing."""
        return self._client.capacity(self._id_bytes)

    async def next_due(self) -> float | None:
        """When the next batch is due: as the last cycle left it, or by the database; and
        not before held requests may go out again."""
        if self._next_due == UNKNOWN:
            self._next_due = _known(await self._repository.next_due_at())
            self._looked_at = self._clock()
        held_until = self._upstream.held_until()
        due = self._next_due if held_until is None else max(self._next_due, held_until)
        return None if due == math.inf else due

    def _worth_a_look(self, now: float) -> bool:
        """Whether a claim may find something due: a batch known due, a due time not
        known, or no look at the database for a while."""
        return now >= self._next_due or now - self._looked_at >= LOOK_EVERY

    async def run_cycle(self) -> CycleStats:
        """Poll every batch that is due now; returns what the cycle did."""
        stats = CycleStats()
        now = self._clock()
        if self._before_claim is not None and now - self._followed_at >= self._follow_every:
            self._followed_at = now
            await self._before_claim()
        if self._upstream.held_until() is not None or not self._worth_a_look(now):
            return stats
        writer = GroupWriter(self._repository, self._on_changes)
        soonest: float | None = UNKNOWN
        gate = asyncio.Semaphore(self._max_in_flight)
        # Claim a few rounds of requests at a time: few transactions, little bubble. No more
        # than the pacing lets out well within the lease: a quota paced to one request a
        # minute claims one batch at a time, never batches that would wait out their lease.
        chunk = min(self._max_in_flight * 4, self._client.sendable(self._lease / 2))
        try:
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
                joins = Joins.of(pieces)
                turn = Turn(view, pollable, claimed_at, joins, gate, writer, stats, size)
                await asyncio.gather(*(self._poll(piece, turn) for piece in pieces))
                if len(pieces) < chunk:
                    break
            status = self._upstream.pending_save()
            if status is not None:
                writer.submit(PollWrite(upstream=status))  # in the cycle's last transaction
            await writer.flush()
            self._next_due = min(_known(soonest), writer.soonest)
            await self._after_cycle()
        except BaseException:
            # A write may have failed after the cache took it in: trust only the database.
            self._cache.forget()
            self._moves.clear()
            self._next_due = UNKNOWN
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
            await self._repository.rehome(moves, self._unit_size, now, new_id)
            self._next_due = UNKNOWN
        if self._upstream.pop_recovered():
            await self._repository.expedite(now, self._lease)
            self._next_due = UNKNOWN

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
        for batch in stale:
            own = self._own_ids(loaded[batch.id])
            view[batch.id] = cache.remember(batch.id, batch.version, own, self.watchlist)
        return view

    def _own_ids(self, states: dict[str, EventState]) -> dict[str, EventState]:
        """`states` keyed by the watchlist's own ID strings: the copies the database hands
        out would cost another 6 MB for every 100,000 events cached."""
        watchlist = self.watchlist
        own: dict[str, EventState] = {}
        for event_id, state in states.items():
            watch = watchlist.get(event_id)
            if watch is None:
                own[event_id] = state
            else:
                own[watch.event_id] = state
        return own

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
                writer.submit(_unpolled(batch, _next_due(batch, claimed_at)))
        return pollable

    async def _poll(self, piece: list[Part], turn: Turn) -> None:
        """One request for the events of `piece`; each batch then written as its own poll
        (a batch carried in parts, once the last request that carried a part has answered)."""
        polled = [part.batch for part in piece]
        whole = all(part.whole for part in piece)
        event_ids = [event_id for part in piece for event_id in part.members]
        same_as = self._cache.same_answer(polled, turn.view, turn.claimed_at) if whole else None
        await turn.writer.room()
        async with turn.gate:
            if len(event_ids) > self.request_size:
                self._unsent(piece, CutTooLarge(), turn)
                return
            try:
                kind = request_kind(polled[0].partition)
                reply = await self._client.fetch_reply(
                    event_ids, same_as, kind=kind, built_at=turn.size
                )
            except (Held, UpstreamError) as exc:
                if not isinstance(exc, Held):
                    turn.stats.requests += 1
                    turn.stats.failed_requests += 1
                    self._metrics.polls_failed.inc()
                self._unsent(piece, exc, turn)
                return
        turn.stats.requests += 1
        self._metrics.polls_ok.inc()
        if whole:
            self._answered(reply, polled, turn)
            return
        found = reply.found or {}
        complete = [part.batch for part in piece if part.whole]
        if complete:
            self._answered(Reply(found, None), complete, turn)
        for part in piece:
            if not part.whole:
                self._settle(part.batch, turn.joins.answered(part, found), turn)

    def _unsent(self, piece: list[Part], why: BaseException, turn: Turn) -> None:
        """No answer to `piece`, for `why`: each batch settled as far as its parts allow."""
        for part in piece:
            self._settle(part.batch, why if part.whole else turn.joins.failed(part, why), turn)

    def _settle(
        self, batch: ClaimedBatch, outcome: Found | BaseException | None, turn: Turn
    ) -> None:
        """A batch's poll, once every request that carried a part of it is done (`outcome`
        None until then): held, failed, or answered."""
        if outcome is None:
            return
        if isinstance(outcome, CutTooLarge):
            turn.writer.submit(_unpolled(batch, batch.due_at or batch.riding_until or 0.0))
        elif isinstance(outcome, Held):
            # No cycle claims anything while requests are held, so the batch keeps its
            # schedule: when the hold ends (or a replaced key lifts it), it is due.
            turn.writer.submit(_unpolled(batch, _next_due(batch, turn.claimed_at)))
        elif isinstance(outcome, UpstreamError):
            turn.writer.submit(self._failed(batch, outcome))
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            self._answered(Reply(outcome, None), [batch], turn)

    def _answered(self, reply: Reply, polled: list[ClaimedBatch], turn: Turn) -> None:
        now = self._clock()
        answers = reply.found
        if answers is None:
            self._record_same(polled, now, turn)
            return
        recorded = True
        for batch in polled:
            try:
                answered, changes = self._record(
                    batch,
                    turn.pollable[batch.id],
                    answers,
                    turn.view,
                    now,
                    turn.claimed_at,
                    turn.writer,
                )
            except Exception:
                # One batch's bookkeeping never costs the others their answers: this one
                # keeps its schedule and is read afresh at its next claim.
                logger.exception("batch %s: its answer could not be recorded", batch.id)
                self._cache.drop(batch.id)
                turn.writer.submit(_unpolled(batch, batch.next_due(turn.claimed_at)))
                recorded = False
                continue
            turn.stats.observations += answered
            turn.stats.changes += changes
        if reply.digest is not None and recorded:
            self._cache.answered(polled, turn.view, reply.digest)

    def _record_same(self, polled: list[ClaimedBatch], now: float, turn: Turn) -> None:
        """An answer the same as the last: every event read, none changed."""
        write = PollWrite()
        observed = 0
        for batch in polled:
            observed += len(turn.pollable[batch.id])
            due = batch.next_due(turn.claimed_at)
            write.polled.append(BatchPolled(batch.id, now, due, revised=False))
        self._metrics.unchanged.inc(observed)
        turn.stats.observations += observed
        turn.writer.submit(write)

    def _record(  # noqa: PLR0917 - the parts of one poll
        self,
        batch: ClaimedBatch,
        states: dict[str, EventState],
        answers: Found,
        view: States,
        now: float,
        claimed_at: float,
        writer: GroupWriter,
    ) -> tuple[int, int]:
        """One batch's part of a request's answers through change detection, written as
        its poll; returns how many of its events were answered, and how many changed."""
        write, revised = self._evaluate(states, answers, now, batch)
        answered = len(states) - len(write.unread)
        metrics = self._metrics
        metrics.updated.inc(len(write.updated))
        metrics.missing.inc(len(write.unread))
        metrics.unchanged.inc(answered - len(write.updated))
        if revised:
            version, members = view[batch.id]
            view[batch.id] = self._cache.remember(
                batch.id, version + 1, {**members, **revised}, self.watchlist
            )
        write.polled.append(
            BatchPolled(batch.id, now, batch.next_due(claimed_at), revised=bool(revised))
        )
        writer.submit(write)
        return answered, len(write.changes)

    def _failed(self, batch: ClaimedBatch, error: UpstreamError) -> PollWrite:
        """A batch that rode along gets its own schedule back: it was not due, and whatever
        failed was not its poll. A due batch backs off."""
        if batch.riding_until is not None:
            return _unpolled(batch, batch.riding_until)
        return PollWrite(postponed=[self._retry_of(batch, error)])

    def _pollable(
        self, batch_id: str, members: dict[str, EventState], now: float
    ) -> dict[str, EventState]:
        """The members still watched and not past their `until` (the cached dict itself, in
        the usual case that this is all of them)."""
        if not self._until_any and self._cache.all_watched(batch_id):
            return members
        states = {}
        for event_id, state in members.items():
            watch = self.watchlist.get(event_id)
            if watch is None:
                continue
            if watch.until is not None and now >= watch.until:
                self._notes.until_passed(event_id)
                continue
            states[event_id] = state
        return states

    def _retry_of(self, batch: ClaimedBatch, error: UpstreamError) -> BatchPostponed:
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
        return BatchPostponed(batch.id, self._clock() + delay, failures)

    def _evaluate(
        self,
        states: dict[str, EventState],
        answers: Found,
        now: float,
        batch: ClaimedBatch,
    ) -> tuple[PollWrite, dict[str, EventState]]:
        """Apply the rules to the answers for one batch's `states`.

        Returns the writes and the new states of the events whose rows they change. An
        event read unchanged needs no row write: its batch's poll time stands for it.
        """
        write = PollWrite()
        revised: dict[str, EventState] = {}
        left_out: dict[str, EventState] = {}
        # One object for each state these answers leave behind: most events share a few.
        shared: dict[EventState, EventState] = {}
        rules = self._rules
        watchlist = self.watchlist
        # A batch whose every member is settled (see `detect.settled_until`) needs only the
        # two values compared: the check every observation pays, kept to the least.
        cache = self._cache
        quiet = cache.is_current(batch.id, states) and now < cache.quiet_until(batch.id)
        for event_id, state in states.items():
            item = answers.get(event_id)
            if item is None:
                left_out[event_id] = state
                continue
            status, resale = item.get("status"), item.get("resaleStatus")
            current = state.current
            if quiet and current is not None:
                if (
                    status == current.status
                    and resale == current.resale_status
                    and (state.detail is None or repeats_detail(state.detail, item))
                ):
                    continue
            elif is_unchanged(state, status, resale, now, rules) and repeats_detail(
                state.detail, item
            ):
                continue
            watch = watchlist.get(event_id)
            if watch is None:
                continue  # no longer watched since the claim: its answer is dropped
            new = self._apply(write, watch, state, Answer.of(event_id, item), now, batch)
            revised[event_id] = shared.setdefault(new, new)
        if left_out:
            self._left_out(write, revised, left_out, batch)
        return write, revised

    def _apply(  # noqa: PLR0917 - the parts of one answer
        self,
        write: PollWrite,
        watch: Watch,
        state: EventState,
        answer: Answer,
        now: float,
        batch: ClaimedBatch,
    ) -> EventState:
        """One answer through change detection; returns the event's new state."""
        reading = reading_of(answer)
        if reading.status is None or reading.resale_status is None:
            self._notes.undocumented(answer, reading)
        elif reading.status is Status.UNKNOWN and state.current is None:
            self._notes.probably_invalid(answer.event_id, state, answer.detail.status)
        verdict = detect(state, reading, now, self._rules)
        current = verdict.current
        detail = detail_kept(answer.detail, reading, current)
        invalid = answer.detail.invalid
        was_invalid = state.detail is not None and state.detail.invalid
        if invalid or was_invalid:
            self._follow_validity(watch, current, batch, slow=invalid and was_invalid)
        else:
            self._follow_interval(watch, verdict, batch)
        snapshot_at = now if verdict.snapshot else None
        write.updated.append(
            EventUpdate(
                answer.event_id,
                current,
                verdict.unknown_streak,
                now,
                now if verdict.changed else None,
                snapshot_at,
                detail,
            )
        )
        if current is not None:
            if verdict.snapshot:
                write.snapshots.append(NewSnapshot(answer.event_id, current, now))
            if verdict.changed or (verdict.baseline and self._notify_baseline):
                self._record_change(write, watch, state.current, current, now)
        return EventState(
            current, verdict.unknown_streak, snapshot_at or state.last_snapshot_at, True, detail
        )

    def _follow_interval(self, watch: Watch, verdict: Verdict, batch: ClaimedBatch) -> None:
        """An event whose new status wants another interval moves batch after the cycle
        (unless it is in a burst, which takes its own interval)."""
        if not watch.interval_by_status or not (verdict.changed or verdict.baseline):
            return
        if watch.event_id in self._bursting:
            return
        current = verdict.current
        key = watch.key_for(None if current is None else current.status)
        if key.interval != batch.interval:
            self._moves[watch.event_id] = key

    def _follow_validity(
        self, watch: Watch, current: Availability | None, batch: ClaimedBatch, *, slow: bool
    ) -> None:
        """An event Ticketmaster said twice in a row it does not know is polled at most every
        `invalid_interval`; it returns to its own interval with the first other answer."""
        if watch.event_id in self._bursting:
            return
        key = watch.key_for(None if current is None else current.status, invalid=slow)
        if key.interval == batch.interval:
            return
        self._moves[watch.event_id] = key
        if slow:
            logger.warning(
                "%s: Ticketmaster does not know this event (INVALID_EVENT_ID); it is polled "
                "every %gs until it does",
                watch.name or watch.event_id,
                key.interval,
            )
        else:
            logger.info("%s: Ticketmaster knows this event again", watch.name or watch.event_id)

    def _left_out(
        self,
        write: PollWrite,
        revised: dict[str, EventState],
        states: dict[str, EventState],
        batch: ClaimedBatch,
    ) -> None:
        sample = ", ".join(sorted(states)[:5])
        logger.warning(
            "the answer left out %d requested events (%s); they count as not polled",
            len(states),
            sample,
        )
        # They were last seen when the batch was last read, if they were read then.
        for event_id, state in states.items():
            seen_at = batch.last_polled_at if state.read_in_last_poll else None
            write.unread.append(EventUnread(event_id, seen_at))
            revised[event_id] = state._replace(read_in_last_poll=False)

    def _record_change(
        self,
        write: PollWrite,
        watch: Watch,
        previous: Availability | None,
        current: Availability,
        now: float,
    ) -> None:
        change = Change(new_id(), watch.event_id, watch.name, previous, current, now)
        if previous is None or previous.status is not current.status:
            self._metrics.changes.labels("status", current.status.value).inc()
        if previous is None or previous.resale_status is not current.resale_status:
            self._metrics.changes.labels("resale_status", current.resale_status.value).inc()
        write.changes.append(change)
        write.deliveries.extend(deliveries_of(change, watch.targets, now))


def _known(due: float | None) -> float:
    """A due time read from the database, +inf for "no batch at all"."""
    return math.inf if due is None else due


def _until_any(watchlist: Mapping[str, Watch]) -> bool:
    return any(watch.until is not None for watch in watchlist.values())


def _fastest(watch: Watch) -> float:
    return min([watch.interval, *watch.interval_by_status.values()])


def _shortest(watchlist: Mapping[str, Watch]) -> float:
    return min(map(_fastest, watchlist.values()), default=math.inf)


def _id_bytes(watchlist: Mapping[str, Watch]) -> int:
    """Bytes the longest watched ID takes in a request's URL, with its comma."""
    return max(map(len, watchlist), default=0) + 1


def _next_due(batch: ClaimedBatch, claimed_at: float) -> float:
    """When a batch not polled this time is due again: its own time if it was to ride
    along, else an interval on."""
    return batch.riding_until if batch.riding_until is not None else claimed_at + batch.interval


def _unpolled(batch: ClaimedBatch, due: float) -> PollWrite:
    """A batch not polled, through no failure: due again at `due`, its failures as they were."""
    return PollWrite(postponed=[BatchPostponed(batch.id, due, batch.failures)])
