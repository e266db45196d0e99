"""Renders docs/dashboard.png: the demo watchlist after two days of simulated changes.

The daemon runs on a clock 20,000 times faster than real time, so the timelines fill up
in seconds. Run with `make screenshot` (needs Debian's chromium).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from playwright.async_api import async_playwright

from monitor.app import Monitor
from monitor.config import load_config
from monitor.devtools.simulator import Simulator, serve

ROOT = Path(__file__).parent.parent


async def main() -> None:
    demo = load_config(ROOT / "config/demo.yaml")
    simulator = Simulator(api_key="demo-key", change_every=0.4, watched=[e.id for e in demo.events])
    async with serve(simulator) as upstream:
        workdir = Path(tempfile.mkdtemp())
        config = demo.model_copy(
            update={
                "ticketmaster": demo.ticketmaster.model_copy(update={"base_url": upstream}),
                "database": demo.database.model_copy(
                    update={"url": f"sqlite+aiosqlite:///{workdir / 'shot.db'}"}
                ),
                "polling": demo.polling.model_copy(update={"interval": 1800.0}),
                "server": demo.server.model_copy(update={"port": 0}),
            }
        )
        started, real = time.time(), time.monotonic()

        def fast() -> float:
            return started - 2 * 86400 + (time.monotonic() - real) * 20_000

        async with Monitor(config, clock=fast) as monitor, async_playwright() as playwright:
            await asyncio.sleep(8.6)
            browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium")
            page = await browser.new_page(viewport={"width": 1200, "height": 640})
            token = config.server.token
            # Signed in, as its user would be: the page shows its controls.
            await page.goto(f"{monitor.url}/?token={token.get_secret_value() if token else ''}")
            await page.screenshot(path=str(ROOT / "docs/dashboard.png"))
            await browser.close()


if __name__ == "__main__":
    asyncio.run(main())
