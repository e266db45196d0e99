"""A webhook receiver in its own process for the delivery benchmark.

Records when each POST arrives (by webhook-id) and answers GET /stats with them.
"""

from __future__ import annotations

import sys
import time

from aiohttp import web

arrivals: dict[str, float] = {}


async def hook(request: web.Request) -> web.Response:
    arrivals[request.headers["webhook-id"]] = time.time()
    await request.read()
    return web.Response(status=204)


async def stats(_request: web.Request) -> web.Response:
    return web.json_response(arrivals)


def main() -> None:
    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
