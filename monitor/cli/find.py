"""`find`: search the Discovery API for events to watch, and print them ready to paste."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import replace
from datetime import UTC, datetime, time

import aiohttp
import orjson

from monitor.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, Commands, command, load, table
from monitor.config import Config
from monitor.config.fields import REGIONS
from monitor.discovery.client import DiscoveryClient, Results, Search
from monitor.discovery.details import Attraction, EventDetails
from monitor.markets import UNSUPPORTED_MARKETS
from monitor.times import local_time
from monitor.upstream.quota import MAX_DEPTH

DEFAULT_LIMIT = 100


def register(commands: Commands) -> None:
    find = command(
        commands,
        "find",
        _find,
        "search Ticketmaster for events and print them ready to paste under `events:`",
        examples=(
            "find --keyword Oasis --country GB",
            "find --artist 'Arctic Monkeys'",
            "find --venue KovZ9177Arf --from 2027-01-01 --to 2027-03-31 --json",
        ),
    )
    find.add_argument("--keyword", help="words in the event's or the artist's name")
    find.add_argument("--attraction", metavar="ID", help="an artist's Discovery ID")
    find.add_argument(
        "--artist", metavar="NAME", help="an artist, team or act by name (looked up for its ID)"
    )
    find.add_argument("--venue", metavar="ID", help="a venue's Discovery ID")
    find.add_argument("--country", metavar="CC", help="a country code: US, GB, IE, CA, …")
    find.add_argument("--city")
    find.add_argument("--classification", help="a segment or genre: Music, Sports, …")
    find.add_argument("--from", dest="after", metavar="DATE", help="starting on or after")
    find.add_argument("--to", dest="before", metavar="DATE", help="starting on or before")
    find.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"most events (default {DEFAULT_LIMIT})"
    )
    find.add_argument("--json", action="store_true", help="print the events as JSON")


def _find(args: argparse.Namespace) -> int:
    if args.artist is not None and args.attraction is not None:
        print("find: give --artist or --attraction, not both")
        return EXIT_CONFIG
    try:
        search = Search(
            keyword=args.keyword,
            attraction_id=args.attraction,
            venue_id=args.venue,
            country_code=args.country and args.country.upper(),
            city=args.city,
            classification=args.classification,
            starts_after=_day(args.after, "--from", end=False),
            starts_before=_day(args.before, "--to", end=True),
        )
    except ValueError as exc:
        print(f"find: {exc}")
        return EXIT_CONFIG
    problem = _search_problem(search, args)
    if problem is not None:
        print(f"find: {problem}")
        return EXIT_CONFIG
    found = asyncio.run(_search(load(args.config), search, args.limit, args.artist))
    if found is None:
        print(f"find: Discovery knows no artist, team or act named {args.artist!r}")
        return EXIT_FAILURE
    results, artist = found
    if artist is not None and not args.json:
        print(f"artist: {artist.name} ({artist.id})")
    if args.json:
        print(
            orjson.dumps(
                [_document(e) for e in results.events], option=orjson.OPT_INDENT_2
            ).decode()
        )
    else:
        _print(results, args.limit)
    return EXIT_OK


def _search_problem(search: Search, args: argparse.Namespace) -> str | None:
    if not search.params() and args.artist is None:
        return "say what to look for: --keyword, --artist, --attraction, --venue, --country, --city"
    if not 0 < args.limit <= MAX_DEPTH:
        return f"--limit must be 1 to {MAX_DEPTH:,}"
    return None


async def _search(
    config: Config, search: Search, limit: int, artist: str | None
) -> tuple[Results, Attraction | None] | None:
    """The events of `search`; with `artist`, of the attraction of that name (the one
    named exactly so, else the most relevant); None when there is none."""
    # The daemon's wiring loads only when a search runs, not with every command.
    from monitor.upstream.ratelimit import TokenBucket
    from monitor.wiring import PACING

    tm = config.ticketmaster
    async with aiohttp.ClientSession() as session:
        client = DiscoveryClient(
            session,
            tm.base_url,
            tm.api_key.get_secret_value(),
            tm.timeout,
            limiter=TokenBucket(tm.requests_per_second * PACING),
        )
        if artist is None:
            return await client.search(search, limit), None
        named = await client.attractions(artist)
        if not named:
            return None
        chosen = next((a for a in named if (a.name or "").lower() == artist.lower()), named[0])
        search = replace(search, attraction_id=chosen.id)
        return await client.search(search, limit), chosen


def _print(results: Results, limit: int) -> None:
    events = results.events
    if not events:
        print("no events found")
        return
    table(
        ("ID", "DATE", "NAME", "VENUE", "CITY", "STATUS"),
        [
            (
                e.id,
                _when(e),
                e.name or "-",
                e.venue.name or "-",
                e.venue.city or "-",
                e.lifecycle or "-",
            )
            for e in events
        ],
    )
    print()
    _print_coverage(results, limit)
    print()
    _print_ids(
        "artists (--attraction, or attraction_id: under discover:):",
        {a.id: a.name for e in events for a in e.attractions},
    )
    _print_ids(
        "venues (--venue, or venue_id: under discover:):",
        {e.venue_id: e.venue.name for e in events if e.venue_id},
    )
    print()
    print("# paste under `events:` in your configuration")
    for event in events:
        print(_entry(event))


def _print_coverage(results: Results, limit: int) -> None:
    """How many of the matching events are shown, and why not all."""
    shown = len(results.events)
    print(f"{shown:,} of {results.total:,} matching events shown")
    if results.cut_by_depth:
        print(
            f"  Discovery pages no deeper than {MAX_DEPTH:,} results: narrow the search or "
            "split the dates (--from, --to) to see the rest"
        )
    elif results.total > shown >= limit:
        print(f"  --limit {limit} stopped the search: raise it, or narrow the search")
    if results.malformed:
        print(f"  {results.malformed} answer items were left out: they were not events")


def _print_ids(heading: str, names: dict[str, str | None]) -> None:
    if names:
        print(heading)
        for found, name in names.items():
            print(f"  {found}  {name or '-'}")


def _entry(event: EventDetails) -> str:
    country = event.venue.country
    where = ", ".join(p for p in (_when(event), event.venue.name, event.venue.city) if p)
    if country in UNSUPPORTED_MARKETS:
        return f"# {event.id}: not watchable, the API answers UNKNOWN for every event in {country}"
    lines = [f"  - id: {event.id}    # {where}"]
    if event.name:
        lines.append(f"    name: {orjson.dumps(event.name).decode()}")
    if country in REGIONS:
        lines.append(f"    region: {country}")
    return "\n".join(lines)


def _when(event: EventDetails) -> str:
    """The start in the venue's own time, as fans read it on a ticket."""
    return (
        local_time(event.starts_at, event.timezone, "%Y-%m-%d %H:%M") or event.local_date or "TBA"
    )


def _document(event: EventDetails) -> dict[str, object]:
    return {
        "id": event.id,
        "name": event.name,
        "starts_at": None
        if event.starts_at is None
        else datetime.fromtimestamp(event.starts_at, UTC).isoformat(),
        "local_date": event.local_date,
        "timezone": event.timezone,
        "venue": {
            "id": event.venue_id,
            "name": event.venue.name,
            "city": event.venue.city,
            "country": event.venue.country,
        },
        "attractions": [{"id": a.id, "name": a.name} for a in event.attractions],
        "url": event.url,
        "lifecycle": event.lifecycle,
    }


def _day(text: str | None, option: str, *, end: bool) -> datetime | None:
    """A date (the whole day) or a date-time; UTC unless it says otherwise."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option}: expected a date such as 2027-06-21, got {text!r}") from None
    if len(text) <= len("2027-06-21"):
        moment = datetime.combine(moment.date(), time(23, 59, 59) if end else time.min)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
