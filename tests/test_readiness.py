from __future__ import annotations

import pytest

from monitor.models import Health
from monitor.readiness import readiness

pytestmark = pytest.mark.unit

START = 1_800_000_000.0
OK, DEG, QUOTA, KEY = (
    Health.OK,
    Health.DEGRADED,
    Health.QUOTA_EXHAUSTED,
    Health.INVALID_API_KEY,
)


@pytest.mark.parametrize(
    ("since_start", "since_success", "health", "database_ok", "watching", "expected"),
    [
        pytest.param(5, None, OK, True, True, [], id="start-up grace"),
        pytest.param(29, None, OK, True, True, [], id="grace lasts at least 30s"),
        pytest.param(31, None, OK, True, True, ["scheduler_stalled"], id="no poll after grace"),
        pytest.param(600, 20, OK, True, True, [], id="recent poll"),
        pytest.param(600, 31, OK, True, True, ["scheduler_stalled"], id="over 3x interval"),
        pytest.param(600, 31, OK, True, False, [], id="nothing watched, nothing to poll"),
        pytest.param(600, 20, OK, False, True, ["database_unavailable"], id="database down"),
        pytest.param(600, 500, DEG, True, True, ["upstream_degraded"], id="degraded"),
        pytest.param(600, 500, QUOTA, True, True, ["quota_exhausted"], id="quota"),
        pytest.param(600, 500, KEY, True, True, ["invalid_api_key"], id="key refused"),
        pytest.param(
            600, 500, KEY, False, True, ["database_unavailable", "invalid_api_key"], id="both"
        ),
    ],
)
def test_readiness(  # noqa: PLR0917 - one argument per table column
    since_start: float,
    since_success: float | None,
    health: Health,
    database_ok: bool,
    watching: bool,
    expected: list[str],
) -> None:
    now = START + since_start
    assert (
        readiness(
            now=now,
            started_at=START,
            last_success_at=None if since_success is None else now - since_success,
            shortest_interval=10.0,
            health=health,
            database_ok=database_ok,
            watching=watching,
        )
        == expected
    )


@pytest.mark.parametrize(
    ("since_start", "failures", "health", "expected"),
    [
        pytest.param(600, 0, OK, [], id="writes work"),
        pytest.param(600, 2, OK, [], id="fewer than three in a row"),
        pytest.param(600, 3, OK, ["storage_failing"], id="three in a row"),
        pytest.param(20, 9, OK, [], id="start-up grace"),
        pytest.param(
            600, 3, DEG, ["storage_failing", "upstream_degraded"], id="and the upstream too"
        ),
    ],
)
def test_storage_that_refuses_polls_is_not_ready(
    since_start: float, failures: int, health: Health, expected: list[str]
) -> None:
    now = START + since_start
    reasons = readiness(
        now=now,
        started_at=START,
        last_success_at=now - 1,  # the upstream answers; only the database refuses
        shortest_interval=10.0,
        health=health,
        database_ok=True,
        watching=True,
        storage_failures=failures,
        unready_after=3,
    )
    assert reasons == expected
