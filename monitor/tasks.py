"""Ending background tasks at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

ASK_AGAIN_AFTER = 0.05
"""Seconds to wait for a cancelled task before cancelling it once more."""


async def finish(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has ended; an error it ended with is raised here.

    One `cancel()` is not always enough: on Python 3.11, `asyncio.wait_for` drops a
    cancellation that arrives just as what it waits for completes, so a loop that publishes
    or sleeps through it lives on, and a shutdown that awaited it would wait forever.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=ASK_AGAIN_AFTER)
    with contextlib.suppress(asyncio.CancelledError):
        await task
