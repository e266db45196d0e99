"""Notices when a file changes on disk, by polling its status: works the same on bind
mounts and network file systems, where change notifications often never arrive."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from monitor.times import to_next_beat

logger = logging.getLogger(__name__)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size, status.st_ino


class FileWatcher:
    def __init__(
        self, path: Path, on_change: Callable[[], Awaitable[object]], every: float
    ) -> None:
        self._path = path
        self._on_change = on_change
        self._every = every
        self._seen = _signature(path)

    def remember(self) -> None:
        """The file as it is now has been read (after a SIGHUP): no reload for it."""
        self._seen = _signature(self._path)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        task = asyncio.create_task(self._watch(), name=f"watch {os.fspath(self._path)}")
        try:
            yield
        finally:
            task.cancel()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(to_next_beat(self._every, time.time()))
            current = _signature(self._path)
            if current is None or current == self._seen:
                continue
            self._seen = current
            logger.info("%s changed on disk; reloading it", self._path)
            try:
                await self._on_change()
            except Exception:
                logger.exception("reloading %s failed; the running configuration stays", self._path)
