"""The server's HTML: Jinja templates, escaped, each page carrying its one-time nonce."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from monitor.server.context import NONCE

_environment = Environment(
    loader=PackageLoader("monitor.server", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(
    request: web.Request, template: str, values: dict[str, Any], status: int = 200
) -> web.Response:
    html = _environment.get_template(template).render({**values, "nonce": request.get(NONCE, "")})
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
