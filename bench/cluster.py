"""Helpers for the benchmarks that run real daemons: a simulator process, daemons sharing a
database (SQLite, or a fresh PostgreSQL database), and the simulator's figures."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp

from bench.polling import API_KEY, free_port

POSTGRES_ADMIN = os.environ.get(
    "MONITOR_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextlib.contextmanager
def simulator(*args: str) -> Iterator[str]:
    """A simulator process; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "monitor", "simulate"),
            *("--port", str(port), "--api-key", API_KEY, *args),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    process.stdout.readline()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(5)


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A throw-away PostgreSQL database; yields its SQLAlchemy URL."""
    import asyncpg

    name = f"monitor_bench_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN, timeout=5)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    await admin(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_config(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document))
    return path


def start_daemon(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(15)


async def sim(session: aiohttp.ClientSession, base: str, path: str, post: bool = False) -> Any:
    method = session.post if post else session.get
    async with method(f"{base}/_sim/{path}") as response:
        return await response.json()
