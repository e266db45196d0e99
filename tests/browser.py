"""Debian's Chromium driven by Playwright, for tests of pages as a person sees them."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import Browser, async_playwright


def chromium_path() -> str:
    """The system Chromium; skips (or fails, where CI requires a browser) when absent."""
    path = os.environ.get("MONITOR_CHROMIUM") or shutil.which("chromium")
    if path is None:
        reason = "no Chromium found (apt-get install chromium, or set MONITOR_CHROMIUM)"
        if os.environ.get("MONITOR_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + "; MONITOR_REQUIRE_BROWSER=1 makes it required")
        pytest.skip(reason)
    return path


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    path = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()
