"""Shutdown ends background tasks even when one cancellation is not enough."""

from __future__ import annotations

import asyncio

import pytest

from monitor.tasks import finish

pytestmark = pytest.mark.unit


async def test_a_task_that_survives_one_cancellation_still_ends() -> None:
    # What Python 3.11's wait_for does to a periodic job when the stop arrives as a publish
    # completes: the first cancellation is lost and the loop goes on.
    async def stubborn() -> None:
        lost_one = False
        while True:
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                if lost_one:
                    raise
                lost_one = True

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0.02)
    await asyncio.wait_for(finish(task), 2)
    assert task.cancelled()


async def test_an_error_the_task_ended_with_is_raised() -> None:
    async def failing() -> None:
        raise ValueError("broken")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="broken"):
        await finish(task)


async def test_a_finished_task_is_left_as_it_is() -> None:
    task = asyncio.create_task(asyncio.sleep(0, result=None))
    await task
    await finish(task)
    assert not task.cancelled()
