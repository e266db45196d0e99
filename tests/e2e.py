"""Helpers for tests that run the real daemon process next to real local servers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

ROOT = Path(__file__).parent.parent


@dataclass
class Receiver:
    """A real webhook endpoint; answers with `statuses` (a code, or a code and headers) in
    turn, then 204."""

    url: str = ""
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    hang: asyncio.Event | None = None
    """While set to an unset event, requests are recorded and then left hanging on it."""

    def received(self, count: int) -> Callable[[], bool]:
        return lambda: len(self.requests) >= count

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        if self.hang is not None:
            await self.hang.wait()
        answer = self.statuses.pop(0) if self.statuses else 204
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return web.Response(status=status, headers=headers)


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    app.router.add_post("/elsewhere", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    found.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield found
    finally:
        await runner.cleanup()


@dataclass
class Daemon:
    process: asyncio.subprocess.Process
    stderr: bytearray = field(default_factory=bytearray)
    _reader: asyncio.Task[None] | None = None

    @property
    def log(self) -> str:
        return self.stderr.decode(errors="replace")

    async def stop(self, sig: int = signal.SIGTERM, within: float = 10.0) -> int:
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), within)
        if self._reader is not None:
            await self._reader
        return code


def daemon_config(path: Path, upstream: str, events: list[dict[str, Any]], **sections: Any) -> Path:
    """A daemon config next to its SQLite database, polling `upstream` every second, with a
    `console` log notifier; `sections` replace whole sections."""
    from tests.conftest import API_KEY

    document: dict[str, Any] = {
        "ticketmaster": {"base_url": upstream, "api_key": API_KEY},
        "database": {"url": f"sqlite+aiosqlite:///{path.parent / 'monitor.db'}"},
        "server": {"port": 0},
        "polling": {"interval": "1s"},
        "notifiers": {"console": {"type": "log"}},
        "events": events,
        **sections,
    }
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    return path


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "monitor", *args]


@asynccontextmanager
async def daemon(config: Path, *args: str) -> AsyncIterator[Daemon]:
    process = await asyncio.create_subprocess_exec(
        *cli_command("run", "--config", str(config), *args),
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    running = Daemon(process)

    async def read() -> None:
        assert process.stderr is not None
        while chunk := await process.stderr.read(4096):
            running.stderr.extend(chunk)

    running._reader = asyncio.create_task(read())
    try:
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await running._reader


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *cli_command(*args),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


Step = Callable[[], Awaitable[None]]
