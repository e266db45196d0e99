"""Notices when a file changes on disk, by looking at its status on the daemon's schedule:
works the same on bind mounts and network file systems, where change notifications often
never arrive."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

logger = logging.getLogger(__name__)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size, status.st_ino


class FileWatcher:
    def __init__(self, path: Path, on_change: Callable[[], Awaitable[object]]) -> None:
        self._path = path
        self._on_change = on_change
        self._seen = _signature(path)

    def remember(self) -> None:
        """The file as it is now has been read (after a SIGHUP): no reload for it."""
        self._seen = _signature(self._path)

    async def check(self) -> None:
        """Reload the file if it changed since it was last read."""
        current = _signature(self._path)
        if current is None or current == self._seen:
            return
        self._seen = current
        logger.info("%s changed on disk; reloading it", self._path)
        try:
            await self._on_change()
        except Exception:
            logger.exception("reloading %s failed; the running configuration stays", self._path)
