"""The guard on members' channels: no request to this machine, its network or a cloud's
metadata service on a member's say-so (server-side request forgery).

An address is refused unless it is globally routable: loopback, private, link-local (which
holds 169.254.169.254, the metadata address), shared, reserved and multicast ranges all
are, and so is an IPv6 address that maps or embeds one of them. A name is checked when it
is resolved for each request, so a name that later resolves to 127.0.0.1 is refused then.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "instance-data"})


class BlockedAddress(OSError):
    """The address is not one a member's channel may reach."""


def forbidden(address: str) -> bool:
    """Whether `address` (an IP literal) is not globally routable."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and not embedded.is_global:
            return True
    return not ip.is_global or ip.is_multicast


def literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def host_problem(host: str) -> str | None:
    """Why `host` (a name or an IP literal) may not be reached without resolving it, if so."""
    bare = host.strip("[]").rstrip(".").lower()
    if bare == "localhost" or bare.endswith(".localhost") or bare in METADATA_NAMES:
        return f"{host} is this machine or its cloud's metadata service"
    if literal(bare) and forbidden(bare):
        return f"{host} is a loopback, private or link-local address"
    return None


async def resolved_problem(host: str) -> str | None:
    """Why `host` may not be reached, resolved now; None when it may, or does not resolve
    (DNS may be down for a while: the request itself then fails, and is retried)."""
    problem = host_problem(host)
    if problem is not None or literal(host.strip("[]")):
        return problem
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        address = str(info[4][0])
        if forbidden(address):
            return f"{host} resolves to {address}, a loopback, private or link-local address"
    return None


def url_host(url: str) -> str | None:
    """The server a URL names, if it names one: an IP literal, `localhost`, or a name with
    a dot. Apprise URLs put tokens and topics where a host goes (tgram://BOT_TOKEN/...,
    ntfy://topic), which are not servers and are never looked up."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    if literal(host) or host == "localhost" or "." in host:
        return host
    return None


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing every name that resolves to a forbidden address."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        problem = host_problem(host)
        if problem is not None:
            raise BlockedAddress(problem)
        found = await self._inner.resolve(host, port, family)
        for result in found:
            if forbidden(result["host"]):
                raise BlockedAddress(
                    f"{host} resolves to {result['host']}, a loopback, private or link-local "
                    "address"
                )
        return found

    async def close(self) -> None:
        await self._inner.close()
