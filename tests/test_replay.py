"""A dry run of notification rules over stored changes: the pure replay, then the command."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from monitor.config import Rule
from monitor.models import Availability, Change, Outcome, Status
from monitor.notify.dry_run import Fate, Planned, replay
from monitor.notify.routing import Target
from monitor.store.engine import create_engine, upgrade
from monitor.store.outbox import Attempt, Outbox
from monitor.store.records import NewDelivery, PollWrite
from monitor.store.repository import Repository
from monitor.store.watches import Origin, StoredWatch, Watches
from tests.conftest import API_KEY
from tests.e2e import run_cli
from tests.support import RN, A, F, N

T = 1_800_000_000.0
ON_SALE = Rule.model_validate({"field": "status", "to": ["TICKETS_AVAILABLE"]})


def change(number: int, event: str, before: Status, after: Status, at: float) -> Change:
    return Change(f"c{number}", event, None, Availability(before, RN), Availability(after, RN), at)


HISTORY = [
    change(1, "E1", N, A, T),
    change(2, "E1", A, F, T + 60),
    change(3, "E1", F, N, T + 120),
    change(4, "E2", N, A, T + 130),
]


def fates(planned: list[Planned], notifier: str) -> list[tuple[str, Fate, float | None]]:
    return [(p.change.id, p.fate, p.at) for p in planned if p.notifier == notifier]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("target", "window", "expected"),
    [
        pytest.param(
            Target("n"),
            0.0,
            [("c1", Fate.SENT, T), ("c2", Fate.SENT, T + 60), ("c3", Fate.SENT, T + 120),
             ("c4", Fate.SENT, T + 130)],
            id="everything at once",
        ),
        pytest.param(
            Target("n", ((ON_SALE,),)),
            0.0,
            [("c1", Fate.SENT, T), ("c2", Fate.NOT_ROUTED, None),
             ("c3", Fate.NOT_ROUTED, None), ("c4", Fate.SENT, T + 130)],
            id="only on-sales",
        ),
        pytest.param(
            Target("n", cooldown=300.0),
            0.0,
            [("c1", Fate.SENT, T), ("c2", Fate.SUPERSEDED, None),
             ("c3", Fate.SENT, T + 300), ("c4", Fate.SENT, T + 130)],
            id="a cooldown: only the latest state, when it ends",
        ),
        pytest.param(
            Target("n"),
            90.0,
            [("c1", Fate.SENT, T + 90), ("c2", Fate.SENT, T + 90), ("c3", Fate.SENT, T + 210),
             ("c4", Fate.SENT, T + 210)],
            id="a group window",
        ),
    ],
)  # fmt: skip
def test_replay_runs_the_policy_stages_in_event_time(
    target: Target, window: float, expected: list[tuple[str, Fate, float | None]]
) -> None:
    planned = replay(HISTORY, lambda _: (target,), ["n"], {"n": window})
    assert fates(planned, "n") == expected


@pytest.mark.unit
def test_an_event_no_longer_watched_reaches_nobody() -> None:
    planned = replay(HISTORY, lambda event: (Target("n"),) if event == "E2" else (), ["n"], {})
    assert [p.fate for p in planned] == [Fate.NOT_ROUTED] * 3 + [Fate.SENT]


async def test_replay_shows_what_a_new_rule_would_have_changed(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    engine = create_engine(database)
    await upgrade(engine)
    now = time.time()
    history = [
        change(1, "E1", N, A, now - 3600),
        change(2, "E1", A, F, now - 1800),
        change(3, "E2", N, F, now - 900),
    ]
    write = PollWrite(changes=history)
    write.deliveries.extend(
        NewDelivery(f"d{c.id}", c.id, "ops", c.observed_at, 0.0) for c in history
    )
    await Repository(engine).save_poll(write)
    await Outbox(engine).record_attempts(
        [Attempt(f"d{c.id}", c.observed_at + 1, Outcome.DELIVERED) for c in history]
    )
    # E2 was watched through the API, not the file: the daemon routed it all the same.
    await Watches(engine).put(
        StoredWatch("E2", Origin.API, None, {"id": "E2"}, now - 7200, None), now - 7200, "api"
    )
    await engine.dispose()
    config = tmp_path / "new.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ticketmaster": {"api_key": API_KEY},
                "database": {"url": database},
                "notifiers": {
                    "ops": {"type": "log"},
                    "fans": {"type": "log", "when": {"field": "status", "to": "TICKETS_AVAILABLE"}},
                },
                "events": [{"id": "E1"}],
            }
        )
    )
    code, out, err = await run_cli("replay", "--config", str(config), "--since", "1d")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("3 changes since ")
    fans = [line for line in lines if " fans " in line]
    assert "sent" in fans[0]
    assert "not routed" in fans[0], "what actually happened"
    assert fans[0].endswith("≠")
    assert "not routed" in fans[1]
    assert not fans[1].endswith("≠")
    ops = [line for line in lines if " ops " in line]
    assert len(ops) == 3
    assert all(not line.endswith("≠") for line in ops), "ops hears as before, E2 too"
    assert lines[-1] == "1 of 6 outcomes differ from what was delivered"
