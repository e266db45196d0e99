"""The requests of one claim: what they share, each sent and its answer settled into the
writes of the batches it carried, a batch carried in parts once every part is answered. A
batch not answered is written as held, cut too large, failed or left out of the poll."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from monitor.backoff import exponential_delay
from monitor.errors import Held, RateLimited, UpstreamError
from monitor.markets import request_kind
from monitor.metrics import Metrics
from monitor.models import EventState
from monitor.polling.cache import StateCache, States
from monitor.polling.pieces import Joins, Part
from monitor.polling.recorder import Recorder
from monitor.polling.writer import GroupWriter
from monitor.store.records import BatchPostponed, ClaimedBatch, PollWrite
from monitor.upstream.answers import Found
from monitor.upstream.inventory import InventoryClient, Reply

logger = logging.getLogger(__name__)


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


class Fetcher:
    """Sends the requests of a claim, and settles each answer (or its absence) into the
    writes of the batches it carried."""

    def __init__(
        self,
        client: Callable[[], InventoryClient],
        request_size: Callable[[], int],
        *,
        recorder: Recorder,
        cache: StateCache,
        clock: Callable[[], float],
        retry: RetryPolicy,
        rng: random.Random,
        metrics: Metrics,
    ) -> None:
        self._client = client
        self._request_size = request_size
        self._recorder = recorder
        self._cache = cache
        self._clock = clock
        self._retry = retry
        self._rng = rng
        self._metrics = metrics

    async def poll(self, piece: list[Part], turn: Turn) -> None:
        """One request for the events of `piece`; each batch then written as its own poll
        (a batch carried in parts, once the last request that carried a part has answered)."""
        polled = [part.batch for part in piece]
        whole = all(part.whole for part in piece)
        reply = await self._fetch(piece, turn, whole=whole)
        if reply is None:
            return
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

    async def _fetch(self, piece: list[Part], turn: Turn, *, whole: bool) -> Reply | None:
        """The answer to one request for `piece`; None when there is none, each batch then
        settled as far as its parts allow."""
        polled = [part.batch for part in piece]
        event_ids = [event_id for part in piece for event_id in part.members]
        same_as = self._cache.same_answer(polled, turn.view, turn.claimed_at) if whole else None
        await turn.writer.room()
        async with turn.gate:
            if len(event_ids) > self._request_size():
                self._unsent(piece, CutTooLarge(), turn)
                return None
            try:
                kind = request_kind(polled[0].partition)
                reply = await self._client().fetch_reply(
                    event_ids, same_as, kind=kind, built_at=turn.size
                )
            except (Held, UpstreamError) as exc:
                if not isinstance(exc, Held):
                    turn.stats.requests += 1
                    turn.stats.failed_requests += 1
                    self._metrics.polls_failed.inc()
                self._unsent(piece, exc, turn)
                return None
        turn.stats.requests += 1
        self._metrics.polls_ok.inc()
        return reply

    def _unsent(self, piece: list[Part], why: BaseException, turn: Turn) -> None:
        """No answer to `piece`, for `why`: each batch settled as far as its parts allow."""
        for part in piece:
            self._settle(part.batch, why if part.whole else turn.joins.failed(part, why), turn)

    def _settle(
        self, batch: ClaimedBatch, outcome: Found | BaseException | None, turn: Turn
    ) -> None:
        """A batch's poll, once every request that carried a part of it is done (`outcome`
        None until then): held, failed, or answered."""
        if isinstance(outcome, dict):
            self._answered(Reply(outcome, None), [batch], turn)
        elif outcome is not None:
            turn.writer.submit(
                settled(
                    batch,
                    outcome,
                    claimed_at=turn.claimed_at,
                    now=self._clock(),
                    retry=self._retry,
                    rng=self._rng,
                )
            )

    def _answered(self, reply: Reply, polled: list[ClaimedBatch], turn: Turn) -> None:
        now = self._clock()
        answers = reply.found
        recorder = self._recorder
        if answers is None:
            write, observed = recorder.same(
                polled, turn.pollable, now=now, claimed_at=turn.claimed_at
            )
            turn.stats.observations += observed
            turn.writer.submit(write)
            return
        recorded = True
        for batch in polled:
            try:
                write, answered = recorder.record(
                    batch,
                    turn.pollable[batch.id],
                    answers,
                    turn.view,
                    now=now,
                    claimed_at=turn.claimed_at,
                )
            except Exception:
                # One batch's bookkeeping never costs the others their answers: this one
                # keeps its schedule and is read afresh at its next claim.
                logger.exception("batch %s: its answer could not be recorded", batch.id)
                self._cache.drop(batch.id)
                turn.writer.submit(unpolled(batch, batch.next_due(turn.claimed_at)))
                recorded = False
                continue
            turn.writer.submit(write)
            turn.stats.observations += answered
            turn.stats.changes += len(write.changes)
        if reply.digest is not None and recorded:
            self._cache.answered(polled, turn.view, reply.digest)


def settled(
    batch: ClaimedBatch,
    why: BaseException,
    *,
    claimed_at: float,
    now: float,
    retry: RetryPolicy,
    rng: random.Random,
) -> PollWrite:
    """The write for a batch claimed at `claimed_at` that got no answer, for `why`, at `now`."""
    if isinstance(why, CutTooLarge):
        return unpolled(batch, batch.due_at or batch.riding_until or 0.0)
    if isinstance(why, Held):
        # No cycle claims anything while requests are held, so the batch keeps its
        # schedule: when the hold ends (or a replaced key lifts it), it is due.
        return unpolled(batch, next_due(batch, claimed_at))
    if not isinstance(why, UpstreamError):
        raise why
    if batch.riding_until is not None:
        # A batch that rode along gets its own schedule back: it was not due, and whatever
        # failed was not its poll.
        return unpolled(batch, batch.riding_until)
    return PollWrite(postponed=[_retry_of(batch, why, now, retry, rng)])


def _retry_of(
    batch: ClaimedBatch,
    error: UpstreamError,
    now: float,
    retry: RetryPolicy,
    rng: random.Random,
) -> BatchPostponed:
    """The failed batch's next due time: backoff, and never before a Retry-After."""
    failures = batch.failures + 1
    retry_after = error.retry_after if isinstance(error, RateLimited) else None
    delay = exponential_delay(
        failures, retry.initial, retry.maximum, retry_after=retry_after, rng=rng
    )
    return BatchPostponed(batch.id, now + delay, failures)


def next_due(batch: ClaimedBatch, claimed_at: float) -> float:
    """When a batch not polled this time is due again: its own time if it was to ride
    along, else an interval on."""
    return batch.riding_until if batch.riding_until is not None else claimed_at + batch.interval


def unpolled(batch: ClaimedBatch, due: float) -> PollWrite:
    """A batch not polled, through no failure: due again at `due`, its failures as they were."""
    return PollWrite(postponed=[BatchPostponed(batch.id, due, batch.failures)])
