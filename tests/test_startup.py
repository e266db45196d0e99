"""A daemon that cannot start says why in one line and exits 1 (2 for a config mistake):
never a traceback. Each case runs the real `run` command."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import daemon_config, run_cli


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def sections(tmp_path: Path, case: str, busy_port: int) -> dict[str, object]:
    database = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    cases: dict[str, dict[str, object]] = {
        "sqlite without its driver": {"database": {"url": f"sqlite:///{tmp_path / 'm.db'}"}},
        "postgres without its driver": {"database": {"url": "postgresql://me@127.0.0.1/test"}},
        "unknown dialect": {"database": {"url": "oracle://me@127.0.0.1/test"}},
        "unresolvable database host": {
            "database": {"url": "postgresql+asyncpg://me@no-such-host.invalid/db"}
        },
        "port in use": {"database": {"url": database}, "server": {"port": busy_port}},
        "unresolvable server host": {
            "database": {"url": database},
            "server": {"host": "no-such-host.invalid", "token": "a-long-enough-token-1"},
        },
        "read-only database": {
            "database": {"url": f"sqlite+aiosqlite:///file:{tmp_path / 'ro.db'}?mode=ro&uri=true"}
        },
    }
    return cases[case]


EXPECTED = {
    "sqlite without its driver": (2, "write sqlite+aiosqlite:///"),
    "postgres without its driver": (2, "write postgresql+asyncpg://***@127.0.0.1/test"),
    "unknown dialect": (2, "expected sqlite+aiosqlite:///PATH or postgresql+asyncpg://"),
    "unresolvable database host": (1, "error: cannot migrate the database:"),
    "port in use": (1, "error: the HTTP server cannot listen on 127.0.0.1:"),
    "unresolvable server host": (1, "error: the HTTP server cannot listen on no-such-host"),
    "read-only database": (1, "attempt to write a readonly database"),
}


@pytest.mark.parametrize("case", list(EXPECTED))
async def test_a_failed_start_is_one_line(tmp_path: Path, busy_port: int, case: str) -> None:
    if case == "read-only database":
        (tmp_path / "ro.db").touch()
    path = daemon_config(
        tmp_path / "monitor.yaml",
        "http://127.0.0.1:9",
        [{"id": "E1"}, {"id": "E2"}],
        **sections(tmp_path, case, busy_port),
    )
    code, _, err = await run_cli("run", "--config", str(path))
    want_code, want_text = EXPECTED[case]
    lines = [line for line in err.splitlines() if not line.startswith("20")]  # log lines
    assert (code, len(lines)) == (want_code, 1), err
    assert want_text in lines[0], err
    assert "Traceback" not in err
