"""The poller's cache: a batch's states are used only at the version they were read at, and
a repeated answer is skipped only while nothing it depends on has moved."""

from __future__ import annotations

import math

import pytest

from monitor.models import Availability, EventState
from monitor.polling.cache import StateCache
from monitor.polling.detect import Rules
from monitor.store.records import ClaimedBatch
from tests.support import RN, A

pytestmark = pytest.mark.unit

RULES = Rules(unknown_after=3, snapshot_every=3600.0)
KNOWN = Availability(A, RN)
SETTLED = EventState(KNOWN, 0, last_snapshot_at=1000.0)
"""Read in the last poll, snapshot at 1000: an answer repeating it changes nothing until 4600."""
STREAK = EventState(KNOWN, 1, last_snapshot_at=1000.0)
"""Waits on an UNKNOWN streak: every answer counts."""


def batch(batch_id: str = "B1", version: int = 1) -> ClaimedBatch:
    return ClaimedBatch(batch_id, 60.0, None, version)


def test_states_are_used_only_at_the_version_they_were_read_at() -> None:
    cache = StateCache(RULES)
    assert cache.fresh(batch()) is None
    states = {"E1": SETTLED}
    entry = cache.remember("B1", 1, states, {"E1": object()})
    assert cache.fresh(batch(version=1)) is entry
    assert cache.fresh(batch(version=2)) is None, "another replica wrote a member"
    assert cache.is_current("B1", states)
    assert not cache.is_current("B1", {"E1": SETTLED}), "the very dict, not an equal one"
    cache.drop("B1")
    assert cache.fresh(batch(version=1)) is None


def test_what_the_fast_paths_ask_is_kept_with_the_states() -> None:
    cache = StateCache(RULES)
    settled = {"E1": SETTLED, "E2": SETTLED}
    cache.remember("B1", 1, settled, {"E1": object(), "E2": object()})
    cache.remember("B2", 1, {"E1": SETTLED, "E3": SETTLED}, {"E1": object()})
    cache.remember("B3", 1, {"E1": SETTLED, "E4": STREAK}, {"E1": object(), "E4": object()})
    cache.remember("B4", 1, {}, {})
    assert [cache.all_watched(b) for b in ("B1", "B2", "B5")] == [True, False, False]
    assert cache.quiet_until("B1") == 4600.0
    assert cache.quiet_until("B3") == -math.inf, "a member waits on a streak"
    assert cache.quiet_until("B4") == math.inf
    assert cache.quiet_until("B5") == -math.inf, "never seen: never quiet"
    assert cache.quiet("B1", settled, 4599.0)
    assert not cache.quiet("B1", settled, 4600.0), "settled until then, not after"
    assert not cache.quiet("B1", dict(settled), 0.0), "states read afresh are compared in full"


def test_a_repeated_answer_is_skipped_only_while_nothing_moved() -> None:
    cache = StateCache(RULES)
    polled = [batch("B1"), batch("B2")]
    view = {
        "B1": cache.remember("B1", 1, {"E1": SETTLED}, {"E1": object()}),
        "B2": cache.remember("B2", 4, {"E2": SETTLED}, {"E2": object()}),
    }
    assert cache.same_answer(polled, view, 2000.0) is None, "no answer seen yet"
    cache.answered(polled, view, b"digest")
    assert cache.same_answer(polled, view, 2000.0) == b"digest"
    assert cache.same_answer(polled, view, 4600.0) is None, "a snapshot is due"
    moved = {**view, "B2": (5, view["B2"][1])}
    assert cache.same_answer(polled, moved, 2000.0) is None, "a member was written since"
    cache.forget()
    assert cache.same_answer(polled, view, 2000.0) is None
    assert cache.fresh(batch("B1")) is None
