"""`watch follow`, `watch unfollow` and `watch searches`: follow an artist (or any filters
of `discover:`) without editing YAML; every show they announce is watched until it starts.
The commands work on the database, so a running daemon runs a new search within a minute."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from monitor.cli.common import EXIT_OK, WHO, Commands, command, database, load, refused, table
from monitor.config import Config
from monitor.discovery.client import DiscoveryClient
from monitor.discovery.details import Attraction
from monitor.errors import Refused
from monitor.following import Following
from monitor.store.followed import Searches
from monitor.wording import plural


def register(actions: Commands) -> None:
    follow = command(
        actions,
        "follow",
        _follow,
        "follow an artist: every show they announce is watched until it starts",
        examples=('watch follow "Florence + the Machine"', "watch follow Oasis --notify phone"),
    )
    follow.add_argument("artist", help="an artist, team or act, by name")
    follow.add_argument("--name", help="a label for the search (the artist's name by default)")
    follow.add_argument("--notify", help="notifiers that hear of their shows, comma-separated")
    unfollow = command(
        actions,
        "unfollow",
        _unfollow,
        "stop a search followed here; the shows it found stay until they start",
        examples=("watch unfollow oasis",),
    )
    unfollow.add_argument("name")
    searches = command(
        actions,
        "searches",
        _searches,
        "list the searches that add watches: the config file's and those followed here",
        examples=("watch searches", "watch searches --json"),
    )
    searches.add_argument("--json", action="store_true")


def _follow(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"artist": args.artist}
    if args.name:
        body["name"] = args.name
    if args.notify:
        body["notify"] = [name.strip() for name in args.notify.split(",") if name.strip()]

    async def act(following: Following) -> int:
        search = await following.follow(body, WHO)
        print(
            f"following {search['artist']} as {search['name']!r}: a running daemon searches "
            "for their shows within a minute"
        )
        return EXIT_OK

    return _run(args, act)


def _unfollow(args: argparse.Namespace) -> int:
    async def act(following: Following) -> int:
        await following.unfollow(args.name, WHO)
        print(f"{args.name} is no longer followed; the shows it found stay until they start")
        return EXIT_OK

    return _run(args, act)


def _searches(args: argparse.Namespace) -> int:
    async def act(following: Following) -> int:
        searches = await following.searches()
        if args.json:
            print(orjson.dumps(searches, option=orjson.OPT_INDENT_2).decode())
            return EXIT_OK
        if not searches:
            print('no searches: follow an artist with `watch follow "NAME"`')
            return EXIT_OK
        table(
            ("NAME", "FOLLOWS", "FROM", "FOUND"),
            [
                (
                    str(s["name"]),
                    str(s.get("artist") or s.get("keyword") or s.get("attraction_id") or "-"),
                    "config file" if s["origin"] == "config" else "here",
                    "-" if s.get("found") is None else plural(int(s["found"]), "event"),
                )
                for s in searches
            ],
        )
        return EXIT_OK

    return _run(args, act)


def _run(args: argparse.Namespace, act: Callable[[Following], Awaitable[int]]) -> int:
    config = load(args.config)

    async def body() -> int:
        async with database(config) as engine, _artists(config) as artists:
            following = Following(Searches(engine), lambda: config, time.time, artists=artists)
            try:
                return await act(following)
            except Refused as exc:
                return refused(f"watch {args.action}", exc)

    return asyncio.run(body())


@asynccontextmanager
async def _artists(
    config: Config,
) -> AsyncIterator[Callable[[str], Awaitable[Sequence[Attraction]]]]:
    """Discovery's artist search, with the configured key."""
    tm = config.ticketmaster
    async with aiohttp.ClientSession() as session:
        client = DiscoveryClient(session, tm.base_url, tm.api_key.get_secret_value(), tm.timeout)
        yield client.attractions
