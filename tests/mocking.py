"""aioresponses, made to work with aiohttp 3.14.

aiohttp 3.14 (a security release) added a required `stream_writer` argument to
ClientResponse, which aioresponses 0.7.x does not pass (pnuckowski/aioresponses#289).
Until a release fixes it, the mocked responses get a writer that reports nothing sent.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiohttp import ClientResponse
from aioresponses import aioresponses


class _CompatibleResponse(ClientResponse):
    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


class mocked_http(aioresponses):
    def add(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("response_class", _CompatibleResponse)
        super().add(*args, **kwargs)
