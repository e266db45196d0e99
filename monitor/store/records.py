"""Typed records that cross the seam between the poller and the store.

The poller says what happened in these terms; only the store turns them into bind
parameters. The ones built per observed event are NamedTuples: immutable, and several
times cheaper to build than dataclasses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from monitor.models import Availability, Change, Status, StatusDetail, UpstreamStatus


class BatchKey(NamedTuple):
    """What the events of one batch share."""

    interval: float
    partition: str = ""
    invalid: bool = False
    """Its events are IDs Ticketmaster does not know (see `Watch.key_for`)."""


class Watch(Protocol):
    """A watch as the store sees it: what it needs to keep the event in the right batch.
    `polling.watchlist.Watch` is one; the store does not import it."""

    @property
    def event_id(self) -> str: ...

    @property
    def name(self) -> str | None: ...

    @property
    def link(self) -> str | None: ...

    @property
    def market(self) -> str | None: ...

    @property
    def partition(self) -> str: ...

    def key_for(self, status: Status | None, *, invalid: bool = False) -> BatchKey: ...


@dataclass(frozen=True, slots=True)
class ClaimedBatch:
    id: str
    interval: float
    last_polled_at: float | None
    version: int
    failures: int = 0
    riding_until: float | None = None
    """For a batch taken along by a request with room before it was due: when it was due.
    A failed request gives it that time back."""
    due_at: float | None = None
    """When a due batch was due: its next poll keeps to that schedule."""
    partition: str = ""
    """What its requests must carry besides the IDs (see `markets`)."""

    def next_due(self, polled_at: float) -> float:
        """When the batch is due after a poll at `polled_at`.

        A due batch keeps to its schedule: it is next due at the first of its slots (its
        due time plus whole intervals) after this poll. So the time a claim takes never
        adds up poll after poll (that would leave quota unspent), a late batch never polls
        more than once a slot (no catching up in a burst), batches keep the spread they
        were given, and no gap between polls exceeds the interval by more than a wake
        gathers for (see `polling.ticker.GATHER`). One that rode along is due an interval
        after this poll.
        """
        interval = self.interval
        if self.due_at is None:
            return polled_at + interval
        slots = math.floor((polled_at - self.due_at) / interval) + 1
        return self.due_at + max(1, slots) * interval


class EventUpdate(NamedTuple):
    """A read event whose row changes: a new state, streak or snapshot time."""

    event_id: str
    current: Availability | None
    unknown_streak: int
    seen_at: float
    changed_at: float | None
    snapshot_at: float | None
    detail: StatusDetail | None = None


class EventUnread(NamedTuple):
    """An event a successful answer left out: it keeps its state and last-seen time."""

    event_id: str
    seen_at: float | None
    """When its batch was last read, if it was read then."""


class NewSnapshot(NamedTuple):
    event_id: str
    availability: Availability
    observed_at: float


class NewDelivery(NamedTuple):
    id: str
    change_id: str
    notifier: str
    created_at: float
    cooldown: float
    urgent: bool = False
    """Passed by a rule marked urgent: it ignores the notifier's quiet hours."""


class BatchPolled(NamedTuple):
    batch_id: str
    polled_at: float
    next_due: float
    revised: bool
    """The poll changed member states: the batch's version moves on by one. The version is
    moved, never set, so a membership write made meanwhile still invalidates every cache."""


class BatchPostponed(NamedTuple):
    """A batch not answered: due again at `next_due`, after `failures` failed polls in a row."""

    batch_id: str
    next_due: float
    failures: int


@dataclass(slots=True)
class PollWrite:
    """Everything some polled batches change, written in one transaction.

    An event read unchanged appears nowhere: its batch's `polled` record stands for it.
    """

    updated: list[EventUpdate] = field(default_factory=list)
    unread: list[EventUnread] = field(default_factory=list)
    snapshots: list[NewSnapshot] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    deliveries: list[NewDelivery] = field(default_factory=list)
    polled: list[BatchPolled] = field(default_factory=list)
    postponed: list[BatchPostponed] = field(default_factory=list)
    # The upstream's health and quota, when due to be saved: it rides with the polls.
    upstream: UpstreamStatus | None = None

    def merge(self, other: PollWrite) -> None:
        self.updated.extend(other.updated)
        self.unread.extend(other.unread)
        self.snapshots.extend(other.snapshots)
        self.changes.extend(other.changes)
        self.deliveries.extend(other.deliveries)
        self.polled.extend(other.polled)
        self.postponed.extend(other.postponed)
        self.upstream = other.upstream or self.upstream
