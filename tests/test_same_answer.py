"""An answer byte for byte the same as the last one to the same request is not parsed
again, unless a rule that time moves on needs it to be."""

from __future__ import annotations

import pytest

from monitor.store.tables import snapshots
from monitor.upstream.answers import AnswerReader
from tests.rig import RigBuilder
from tests.support import RN, A, F


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many event IDs each parsed answer was for."""
    seen: list[int] = []
    parse = AnswerReader.parse

    def counting(self: AnswerReader, body: bytes, event_ids: list[str]) -> object:
        seen.append(len(event_ids))
        return parse(self, body, event_ids)

    monkeypatch.setattr(AnswerReader, "parse", counting)
    return seen


async def test_the_same_answer_again_is_not_parsed_and_a_change_still_is(
    rig: RigBuilder, parses: list[int]
) -> None:
    r = await rig(batch_size=10)
    for event_id in ("E1", "E2", "E3"):
        r.simulator.set(event_id, A, RN)
    await r.cycle()  # the baseline
    await r.cycle()  # the same answer, against the states the baseline left
    parsed = len(parses)
    for _ in range(3):
        await r.cycle()
    assert len(parses) == parsed, "three answers the same as the last: none parsed"
    assert r.simulator.requests == 5, "every poll still asks"
    rows = {row.event_id: row for row in await r.reads.event_rows()}
    assert rows["E1"].last_seen_at == r.clock.now - 10.0, "and counts as a read"
    r.simulator.set("E2", F, RN)
    await r.cycle()
    assert len(parses) == parsed + 1
    assert [c.event_id for c in await r.reads.changes_of()] == ["E2"]


async def test_a_snapshot_due_is_written_though_the_answer_is_the_same(
    rig: RigBuilder, parses: list[int]
) -> None:
    r = await rig(ids=("E1",))
    r.simulator.set("E1", A, RN)
    await r.cycle()
    await r.cycle()
    assert await r.count(snapshots) == 1
    r.clock.advance(3600.0)  # the rig's snapshot_every
    parsed = len(parses)
    await r.cycle()
    assert len(parses) == parsed + 1
    assert await r.count(snapshots) == 2
