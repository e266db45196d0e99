from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.models import Answer, Availability, EventState, Reading, ResaleStatus, Status
from monitor.polling.detect import Rules, detect, is_unchanged, reading_of
from tests.support import RA, RN, RU, A, F, N, U

pytestmark = pytest.mark.unit

NOW = 10_000.0
RULES = Rules(unknown_after=3, snapshot_every=3600.0)


def state(
    current: Availability | None, streak: int = 0, snapshot_at: float | None = NOW - 60
) -> EventState:
    return EventState(current, streak, snapshot_at)


# (state, reading status, reading resale) -> (current, streak, changed, baseline, snapshot)
CASES = [
    pytest.param(
        state(Availability(A, RN)),
        A,
        RN,
        (Availability(A, RN), 0, False, False, False),
        id="unchanged",
    ),
    pytest.param(
        state(Availability(A, RN)),
        F,
        RN,
        (Availability(F, RN), 0, True, False, True),
        id="status-change",
    ),
    pytest.param(
        state(Availability(A, RN)),
        A,
        RA,
        (Availability(A, RA), 0, True, False, True),
        id="resale-change",
    ),
    pytest.param(
        state(Availability(N, RN)),
        A,
        RA,
        (Availability(A, RA), 0, True, False, True),
        id="both-change",
    ),
    pytest.param(state(None), A, RN, (Availability(A, RN), 0, False, True, True), id="baseline"),
    pytest.param(
        state(None),
        A,
        RU,
        (Availability(A, RU), 0, False, True, True),
        id="baseline-without-resale-market",
    ),
    pytest.param(
        state(None),
        A,
        None,
        (Availability(A, RU), 0, False, True, True),
        id="baseline-missing-resale",
    ),
    pytest.param(
        state(None), U, RN, (None, 1, False, False, False), id="unknown-first-is-no-baseline"
    ),
    pytest.param(
        state(None, streak=2),
        U,
        RN,
        (Availability(U, RN), 0, False, True, True),
        id="unknown-baseline-after-streak",
    ),
    pytest.param(
        state(None, streak=2),
        None,
        RN,
        (Availability(U, RN), 0, False, True, True),
        id="undocumented-baseline-after-streak",
    ),
    pytest.param(
        state(Availability(A, RN)),
        U,
        RN,
        (Availability(A, RN), 1, False, False, False),
        id="single-unknown-keeps-status",
    ),
    pytest.param(
        state(Availability(A, RN)),
        None,
        RN,
        (Availability(A, RN), 1, False, False, False),
        id="undocumented-value-keeps-status",
    ),
    pytest.param(
        state(Availability(A, RN), 1),
        U,
        RU,
        (Availability(A, RN), 2, False, False, False),
        id="second-unknown-keeps-both",
    ),
    pytest.param(
        state(Availability(A, RN), 2),
        U,
        RN,
        (Availability(U, RN), 0, True, False, True),
        id="persistent-unknown-is-a-change",
    ),
    pytest.param(
        state(Availability(A, RN), 2),
        U,
        RU,
        (Availability(U, RU), 0, True, False, True),
        id="persistent-unknown-both-fields",
    ),
    pytest.param(
        state(Availability(A, RN), 2),
        A,
        RN,
        (Availability(A, RN), 0, False, False, False),
        id="known-reading-resets-streak",
    ),
    pytest.param(
        state(Availability(A, RN), 2),
        F,
        RN,
        (Availability(F, RN), 0, True, False, True),
        id="change-after-unknowns",
    ),
    pytest.param(
        state(Availability(A, RN), 1),
        F,
        RU,
        (Availability(F, RN), 2, True, False, True),
        id="status-change-while-resale-unread",
    ),
    pytest.param(
        state(Availability(U, RN)),
        U,
        RN,
        (Availability(U, RN), 0, False, False, False),
        id="accepted-unknown-stays",
    ),
    pytest.param(
        state(Availability(U, RN)),
        A,
        RN,
        (Availability(A, RN), 0, True, False, True),
        id="back-from-unknown-is-a-change",
    ),
    pytest.param(
        state(Availability(A, RU)),
        A,
        RU,
        (Availability(A, RU), 0, False, False, False),
        id="resale-unknown-accepted-no-streak",
    ),
    pytest.param(
        state(Availability(A, RN), snapshot_at=NOW - 3600),
        A,
        RN,
        (Availability(A, RN), 0, False, False, True),
        id="snapshot-due",
    ),
    pytest.param(
        state(Availability(A, RN), snapshot_at=None),
        A,
        RN,
        (Availability(A, RN), 0, False, False, True),
        id="snapshot-never-taken",
    ),
]


@pytest.mark.parametrize(("before", "status", "resale", "expected"), CASES)
def test_detect(
    before: EventState,
    status: Status | None,
    resale: ResaleStatus | None,
    expected: tuple[Availability | None, int, bool, bool, bool],
) -> None:
    verdict = detect(before, Reading("E", status, resale), NOW, RULES)
    assert tuple(verdict) == expected


def test_a_flapping_unknown_never_produces_a_change() -> None:
    current = state(Availability(A, RN))
    for status in [U, A, U, U, A, U, A, U, U, A] * 3:
        verdict = detect(current, Reading("E", status, RN), NOW, RULES)
        assert not verdict.changed
        current = EventState(verdict.current, verdict.unknown_streak, NOW)
    assert current.current == Availability(A, RN)


@pytest.mark.parametrize("unknown_after", [1, 2, 5])
def test_unknown_is_accepted_after_exactly_unknown_after_readings(unknown_after: int) -> None:
    rules = Rules(unknown_after=unknown_after)
    current = state(Availability(F, RN))
    for poll in range(1, unknown_after + 1):
        verdict = detect(current, Reading("E", U, RN), NOW, rules)
        assert verdict.changed == (poll == unknown_after)
        current = EventState(verdict.current, verdict.unknown_streak, NOW)
    assert current.current == Availability(U, RN)


def test_dirty_means_the_row_needs_more_than_a_refresh() -> None:
    before = state(Availability(A, RN))
    assert not detect(before, Reading("E", A, RN), NOW, RULES).dirty(before)
    assert detect(before, Reading("E", U, RN), NOW, RULES).dirty(before)
    assert detect(before, Reading("E", F, RN), NOW, RULES).dirty(before)


@pytest.mark.parametrize(
    ("status", "resale", "expected"),
    [
        ("TICKETS_AVAILABLE", "TICKETS_NOT_AVAILABLE", Reading("E", A, RN)),
        ("FEW_TICKETS_LEFT", "UNKNOWN", Reading("E", F, RU)),
        ("PRESALE", "TICKETS_AVAILABLE", Reading("E", None, RA)),
        ("TICKETS_AVAILABLE", "FEW_TICKETS_LEFT", Reading("E", A, None)),
        (None, None, Reading("E", None, None)),
        (["TICKETS_AVAILABLE"], {"x": 1}, Reading("E", None, None)),
        (1, True, Reading("E", None, None)),
    ],
)
def test_reading_of_keeps_only_documented_values(
    status: object, resale: object, expected: Reading
) -> None:
    assert reading_of(Answer("E", status, resale)) == expected


@given(
    current=st.one_of(
        st.none(), st.builds(Availability, st.sampled_from(Status), st.sampled_from(ResaleStatus))
    ),
    streak=st.integers(0, 4),
    snapshot_age=st.one_of(st.none(), st.floats(0, 10_000)),
    status=st.one_of(st.none(), st.sampled_from([*Status, "PRESALE"])),
    resale=st.one_of(st.none(), st.sampled_from([*ResaleStatus, "SOLD_OUT"])),
)
def test_the_fast_path_agrees_with_detect(
    current: Availability | None,
    streak: int,
    snapshot_age: float | None,
    status: object,
    resale: object,
) -> None:
    """Whenever the poller skips detect, detect would have changed nothing and written nothing."""
    before = EventState(current, streak, None if snapshot_age is None else NOW - snapshot_age)
    answer = Answer("E", status, resale)
    verdict = detect(before, reading_of(answer), NOW, RULES)
    unchanged = verdict.current == current and not verdict.changed and not verdict.dirty(before)
    if is_unchanged(before, status, resale, NOW, RULES):
        assert unchanged
    elif (
        current is not None
        and streak == 0
        and status == current.status
        and (resale == current.resale_status)
    ):
        assert verdict.snapshot, "the fast path may only decline when a snapshot is due"
