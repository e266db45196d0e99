from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.config import Config, parse_config
from monitor.devtools.simulator import Simulator, serve
from monitor.models import Availability, Change, Status
from monitor.store.engine import create_engine, upgrade
from monitor.store.records import NewDelivery, PollWrite
from monitor.store.repository import Repository
from tests.e2e import Receiver, receiver
from tests.support import RN

pytest_plugins = ["tests.rig"]

POSTGRES_ADMIN = os.environ.get(
    "MONITOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
API_KEY = "test-key-9f8e7d6c5b4a"


END_TO_END = frozenset({"run_cli", "chromium", "create_subprocess_exec", "daemon_process"})
"""What an end-to-end test calls: the real command line, a browser, a daemon process."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests come in three kinds: `unit` (marked so: pure, and held to it by
    `_unit_touches_nothing`), `e2e` (a process or a browser, found by what the test calls)
    and integration, the rest (a real database, broker, HTTP server)."""
    for item in items:
        function = getattr(item, "function", None)
        names = set(getattr(getattr(function, "__code__", None), "co_names", ()))
        if names & END_TO_END and item.get_closest_marker("e2e") is None:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _unit_touches_nothing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test marked `unit` that opens a connection or starts a process fails, so that the
    mark cannot lie."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError(
            "a unit test opens no connection (network or database) and starts no process: "
            "mark it otherwise"
        )

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(sqlite3, "connect", refuse)
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _postgres_database() -> Iterator[str]:
    """A throw-away PostgreSQL database for this test session; yields its SQLAlchemy URL."""
    name = f"monitor_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=3)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = f"PostgreSQL is not reachable at {POSTGRES_ADMIN}: {exc}"
        if os.environ.get("MONITOR_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (MONITOR_REQUIRE_POSTGRES=1 makes it required)")
        pytest.skip(reason)
    base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    yield from _postgres_database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs once on SQLite and once on PostgreSQL, on an empty schema."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
        return
    url: str = request.getfixturevalue("postgres_url")

    async def reset() -> None:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await connection.close()

    asyncio.run(reset())
    yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def repository(engine: AsyncEngine) -> Repository:
    return Repository(engine)


@pytest.fixture
async def simulator(clock: FakeClock) -> AsyncIterator[tuple[Simulator, str]]:
    """A real simulator on a free local port; yields it and its base URL."""
    sim = Simulator(api_key=API_KEY, clock=clock)
    async with serve(sim) as url:
        yield sim, url


ConfigFactory = Callable[..., Config]


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    """A real webhook endpoint (aiohttp), recording what it is sent."""
    async with receiver() as found:
        yield found


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigFactory:
    """Builds a validated Config from keyword sections, with working defaults for tests."""

    def build(**sections: Any) -> Config:
        data: dict[str, Any] = {
            "ticketmaster": {"base_url": "http://127.0.0.1:9", "api_key": API_KEY},
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"},
            "server": {"port": 0},
            "polling": {"interval": "10s"},
            "notifiers": {"console": {"type": "log"}},
            "events": [{"id": "EV1"}],
        }
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return parse_config(yaml.safe_dump(data), "test.yaml", {})

    return build


def change_with_delivery(
    number: int | str,
    *,
    at: float,
    event_id: str = "E1",
    previous: str | None = "TICKETS_NOT_AVAILABLE",
    status: str = "TICKETS_AVAILABLE",
    cooldown: float = 0.0,
) -> PollWrite:
    """A stored change `c{number}` with one pending delivery `d{number}` to notifier "ops"."""
    previous_state = None if previous is None else Availability(Status(previous), RN)
    change = Change(
        f"c{number}", event_id, None, previous_state, Availability(Status(status), RN), at
    )
    write = PollWrite(changes=[change])
    write.deliveries.append(NewDelivery(f"d{number}", change.id, "ops", at, cooldown))
    return write
