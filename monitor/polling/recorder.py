"""A batch's answers through change detection, into the writes of its poll: new states,
snapshots, changes and their deliveries. Events whose answers want another interval are
gathered in `moves`, for the poller to move after the cycle."""

from __future__ import annotations

import logging

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
from monitor.polling.watchlist import Watch, Watchlist
from monitor.store.records import (
    BatchKey,
    BatchPolled,
    ClaimedBatch,
    EventUnread,
    EventUpdate,
    NewSnapshot,
    PollWrite,
)
from monitor.upstream.answers import Found

logger = logging.getLogger(__name__)


class Recorder:
    def __init__(
        self,
        watchlist: Watchlist,
        cache: StateCache,
        rules: Rules,
        *,
        notify_baseline: bool,
        metrics: Metrics,
    ) -> None:
        self._watchlist = watchlist
        self._cache = cache
        self._rules = rules
        self._notify_baseline = notify_baseline
        self._metrics = metrics
        self._notes = Notes()
        self.moves: dict[str, BatchKey] = {}
        """Events whose new status wants another interval, moved after the cycle."""

    def same(
        self,
        polled: list[ClaimedBatch],
        pollable: dict[str, dict[str, EventState]],
        *,
        now: float,
        claimed_at: float,
    ) -> tuple[PollWrite, int]:
        """An answer the same as the last: every event read, none changed; returns the
        write and how many events were read."""
        write = PollWrite()
        observed = 0
        for batch in polled:
            observed += len(pollable[batch.id])
            due = batch.next_due(claimed_at)
            write.polled.append(BatchPolled(batch.id, now, due, revised=False))
        self._metrics.unchanged.inc(observed)
        return write, observed

    def record(
        self,
        batch: ClaimedBatch,
        states: dict[str, EventState],
        answers: Found,
        view: States,
        *,
        now: float,
        claimed_at: float,
    ) -> tuple[PollWrite, int]:
        """One batch's part of a request's answers, as its poll's write; returns it and how
        many of the batch's events were answered. `view` takes the batch's new states."""
        write, revised = self._evaluate(states, answers, now, batch)
        answered = len(states) - len(write.unread)
        metrics = self._metrics
        metrics.updated.inc(len(write.updated))
        metrics.missing.inc(len(write.unread))
        metrics.unchanged.inc(answered - len(write.updated))
        if revised:
            version, members = view[batch.id]
            view[batch.id] = self._cache.remember(
                batch.id, version + 1, {**members, **revised}, self._watchlist.watches
            )
        write.polled.append(
            BatchPolled(batch.id, now, batch.next_due(claimed_at), revised=bool(revised))
        )
        return write, answered

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
        watchlist = self._watchlist.watches
        # A batch whose every member is settled (see `detect.settled_until`) needs only the
        # two values compared: the check every observation pays, kept to the least.
        quiet = self._cache.quiet(batch.id, states, now)
        rules = self._rules
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
            new = self._apply(write, watch, state, Answer.of(event_id, item), batch, now=now)
            revised[event_id] = shared.setdefault(new, new)
        _left_out(write, revised, left_out, batch)
        return write, revised

    def _apply(
        self,
        write: PollWrite,
        watch: Watch,
        state: EventState,
        answer: Answer,
        batch: ClaimedBatch,
        *,
        now: float,
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
        self._follow(watch, state, answer, verdict, batch)
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
            self._write_news(write, watch, state.current, verdict, now)
        return EventState(
            current, verdict.unknown_streak, snapshot_at or state.last_snapshot_at, True, detail
        )

    def _write_news(
        self,
        write: PollWrite,
        watch: Watch,
        previous: Availability | None,
        verdict: Verdict,
        now: float,
    ) -> None:
        """The snapshot and the change (with its deliveries) that `verdict` asks for."""
        current = verdict.current
        assert current is not None
        if verdict.snapshot:
            write.snapshots.append(NewSnapshot(watch.event_id, current, now))
        if not (verdict.changed or (verdict.baseline and self._notify_baseline)):
            return
        change = Change(new_id(), watch.event_id, watch.name, previous, current, now)
        if previous is None or previous.status is not current.status:
            self._metrics.changes.labels("status", current.status.value).inc()
        if previous is None or previous.resale_status is not current.resale_status:
            self._metrics.changes.labels("resale_status", current.resale_status.value).inc()
        write.changes.append(change)
        write.deliveries.extend(deliveries_of(change, watch.targets, now))

    def _follow(
        self,
        watch: Watch,
        state: EventState,
        answer: Answer,
        verdict: Verdict,
        batch: ClaimedBatch,
    ) -> None:
        """The batch the event belongs in after this answer: by its validity, else by its
        new status."""
        invalid = answer.detail.invalid
        was_invalid = state.detail is not None and state.detail.invalid
        if invalid or was_invalid:
            self._follow_validity(watch, verdict.current, batch, slow=invalid and was_invalid)
        else:
            self._follow_interval(watch, verdict, batch)

    def _follow_interval(self, watch: Watch, verdict: Verdict, batch: ClaimedBatch) -> None:
        """An event whose new status wants another interval moves batch after the cycle
        (unless it is in a burst, which takes its own interval)."""
        if not watch.interval_by_status or not (verdict.changed or verdict.baseline):
            return
        if watch.event_id in self._watchlist.bursting:
            return
        current = verdict.current
        key = watch.key_for(None if current is None else current.status)
        if key.interval != batch.interval:
            self.moves[watch.event_id] = key

    def _follow_validity(
        self, watch: Watch, current: Availability | None, batch: ClaimedBatch, *, slow: bool
    ) -> None:
        """An event Ticketmaster said twice in a row it does not know is polled at most every
        `invalid_interval`; it returns to its own interval with the first other answer."""
        if watch.event_id in self._watchlist.bursting:
            return
        key = watch.key_for(None if current is None else current.status, invalid=slow)
        if key.interval == batch.interval:
            return
        self.moves[watch.event_id] = key
        if slow:
            logger.warning(
                "%s: Ticketmaster does not know this event (INVALID_EVENT_ID); it is polled "
                "every %gs until it does",
                watch.name or watch.event_id,
                key.interval,
            )
        else:
            logger.info("%s: Ticketmaster knows this event again", watch.name or watch.event_id)

    def until_passed(self, event_id: str) -> None:
        self._notes.until_passed(event_id)


def _left_out(
    write: PollWrite,
    revised: dict[str, EventState],
    states: dict[str, EventState],
    batch: ClaimedBatch,
) -> None:
    if not states:
        return
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
