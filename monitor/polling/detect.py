"""Change detection: the accepted state plus one reading gives the next state and a verdict.

UNKNOWN is "no reading", not a state. A field that reads UNKNOWN (or a value outside the
documented set) keeps its accepted value until that lasts `unknown_after` polls in a row;
only then is UNKNOWN accepted, and reported like any other change.

Why an answer said UNKNOWN (its `statusDetail`) is kept beside the state while anything
read or accepted is UNKNOWN, and compared only then: the answers that repeat a known state,
nearly all of them, are taken without a look at it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple, TypeVar

from monitor.models import (
    RESALE_BY_NAME,
    STATUS_BY_NAME,
    Answer,
    Availability,
    EventState,
    Reading,
    ResaleStatus,
    Status,
    StatusDetail,
)


class Rules(NamedTuple):
    unknown_after: int = 3
    snapshot_every: float = 3600.0


class Verdict(NamedTuple):
    current: Availability | None
    """The accepted availability after this reading; None while there is no baseline yet."""
    unknown_streak: int
    changed: bool
    """`current` differs from a previously accepted availability."""
    baseline: bool
    """This reading is the first one accepted for the event."""
    snapshot: bool
    """A snapshot row is due: on a change, on the baseline, and every `snapshot_every`."""

    def dirty(self, state: EventState) -> bool:
        """Whether the event's row needs more than a last-seen refresh."""
        return self.snapshot or self.unknown_streak != state.unknown_streak


def is_unchanged(
    state: EventState, status: object, resale_status: object, now: float, rules: Rules
) -> bool:
    """The fast path: an answer of `status` and `resale_status` (as the JSON held them)
    repeats the accepted state, and the row needs no write.

    Exactly the case where `detect` returns the state as it is with a clean row; it lets
    the poller skip building a Reading for the vast majority of observations.
    """
    current = state.current
    return (
        current is not None
        and status == current.status
        and resale_status == current.resale_status
        and now < settled_until(state, rules)
    )


def settled_until(state: EventState, rules: Rules) -> float:
    """Until when an answer repeating the accepted state changes nothing for this event:
    the time its next snapshot is due, or -inf while it waits on something (no baseline, an
    UNKNOWN streak, a missed read)."""
    snapshot_at = state.last_snapshot_at
    if (
        state.current is None
        or state.unknown_streak
        or not state.read_in_last_poll
        or snapshot_at is None
    ):
        return -math.inf
    return snapshot_at + rules.snapshot_every


def repeats_detail(detail: StatusDetail | None, item: Mapping[str, object]) -> bool:
    """Whether an answer says UNKNOWN for the reasons kept in the state, or the state keeps
    none (nothing it holds is UNKNOWN)."""
    return detail is None or (item.get("statusDetail"), item.get("resaleStatusDetail")) == detail


def detail_kept(
    detail: StatusDetail, reading: Reading, current: Availability | None
) -> StatusDetail | None:
    """What a state keeps of an answer's `detail` once `reading` gave it `current`: nothing
    while neither is UNKNOWN (there is nothing to explain), else the answer's reasons."""
    if (
        current is not None
        and reading.status is not None
        and reading.resale_status is not None
        and Status.UNKNOWN not in (reading.status, current.status)
        and ResaleStatus.UNKNOWN not in (reading.resale_status, current.resale_status)
    ):
        return None
    return detail


def reading_of(answer: Answer) -> Reading:
    """The documented values of an answer; anything else becomes None ("no reading")."""
    status, resale = answer.status, answer.resale_status
    return Reading(
        answer.event_id,
        STATUS_BY_NAME.get(status) if isinstance(status, str) else None,
        RESALE_BY_NAME.get(resale) if isinstance(resale, str) else None,
    )


T = TypeVar("T", Status, ResaleStatus)


def detect(state: EventState, reading: Reading, now: float, rules: Rules) -> Verdict:
    previous = state.current
    status = None if reading.status is Status.UNKNOWN else reading.status
    resale = None if reading.resale_status is ResaleStatus.UNKNOWN else reading.resale_status
    if previous is None:
        return _baseline(state, status, resale, rules)
    hides = (status is None and previous.status is not Status.UNKNOWN) or (
        resale is None and previous.resale_status is not ResaleStatus.UNKNOWN
    )
    streak = state.unknown_streak + 1 if hides else 0
    accept_unknown = streak >= rules.unknown_after
    current = Availability(
        _kept(status, previous.status, Status.UNKNOWN, accept_unknown=accept_unknown),
        _kept(resale, previous.resale_status, ResaleStatus.UNKNOWN, accept_unknown=accept_unknown),
    )
    streak = 0 if accept_unknown else streak
    if current == previous:
        snapshot = _snapshot_due(state, now, rules)
        return Verdict(previous, streak, changed=False, baseline=False, snapshot=snapshot)
    return Verdict(current, streak, changed=True, baseline=False, snapshot=True)


def _kept(read: T | None, previous: T, unknown: T, *, accept_unknown: bool) -> T:
    """A value read; else the previous one, until UNKNOWN has come often enough in a row
    to be believed."""
    if read is not None:
        return read
    return unknown if accept_unknown else previous


def _baseline(
    state: EventState, status: Status | None, resale: ResaleStatus | None, rules: Rules
) -> Verdict:
    """Nothing is accepted yet: a documented status makes the baseline; resale may be
    UNKNOWN from the start, since many events never have a resale market."""
    streak = state.unknown_streak + 1 if status is None else 0
    if status is None and streak < rules.unknown_after:
        return Verdict(None, streak, changed=False, baseline=False, snapshot=False)
    current = Availability(status or Status.UNKNOWN, resale or ResaleStatus.UNKNOWN)
    return Verdict(current, 0, changed=False, baseline=True, snapshot=True)


def _snapshot_due(state: EventState, now: float, rules: Rules) -> bool:
    return state.last_snapshot_at is None or now - state.last_snapshot_at >= rules.snapshot_every
