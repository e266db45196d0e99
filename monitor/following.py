"""Searches the operator follows at runtime: an artist by name, or any filters of
`discover:`, added through the API, the CLI or the dashboard and run beside the
configuration file's own searches, on every replica.

What a search finds is watched as a `discover:` search's finds are, each event until it
starts; removing the search stops it adding events, and what it added stays.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, Field, Strict, ValidationError

from monitor.config import Config
from monitor.config.fields import PLAIN_TEXT
from monitor.config.model import DiscoverConfig
from monitor.discovery.client import FILTERS
from monitor.discovery.details import Attraction
from monitor.errors import Conflict, Invalid, MonitorError, NotFound
from monitor.inputs import IntervalText, StatusName, StrictInput, problem_of, shaped, whole_number
from monitor.redact import redact
from monitor.store.followed import Followed, Searches
from monitor.times import format_duration, iso, parse_duration

logger = logging.getLogger(__name__)

Artists = Callable[[str], Awaitable[Sequence[Attraction]]]
"""Discovery's attraction search: an artist's name to the artists of that name."""

SearchName = Annotated[str, Strict(), Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,29}$")]
Filter = Annotated[str, Strict(), Field(min_length=1, max_length=200, pattern=PLAIN_TEXT)]
SEARCH_FILTERS = ("artist", *FILTERS)
NAME_LENGTH = 30
SAYS_WHAT: dict[str, Any] = {
    "anyOf": [
        {"required": [name], "properties": {name: {"type": "string"}}} for name in SEARCH_FILTERS
    ],
    # An artist is looked up for the attraction ID: give one or the other.
    "not": {
        "required": ["artist", "attraction_id"],
        "properties": {"artist": {"type": "string"}, "attraction_id": {"type": "string"}},
    },
}
"""What a search's schema says beyond its fields: it looks for something, and an artist by
name or by ID, not both."""


class SearchFilters(StrictInput):
    """What a search looks for: an artist by name (looked up in Discovery), or any filters
    of `discover:`; and which statuses of what it finds to hear of."""

    artist: Filter | None = Field(None, description="An artist, team or act by name.")
    keyword: Filter | None = None
    attraction_id: Filter | None = None
    venue_id: Filter | None = None
    country_code: Annotated[str, Strict(), Field(pattern=r"^[A-Z]{2}$")] | None = None
    city: Filter | None = None
    classification: Filter | None = None
    dma_id: Filter | None = None
    window: IntervalText | None = Field(None, description="Only shows starting within it.")
    when: Annotated[list[StatusName], Field(min_length=1)] | None = Field(
        None, description="The statuses to hear of, for every show it finds."
    )

    model_config = ConfigDict(json_schema_extra=SAYS_WHAT)


class FollowInput(SearchFilters):
    """A search to follow: what it finds is watched, each event until it starts."""

    name: SearchName | None = Field(
        None,
        description="A label for the search; made of the artist's name (or of what it "
        "searches for) when absent.",
    )
    max_events: (
        Annotated[int, Strict(), Field(ge=1, le=1000), BeforeValidator(whole_number)] | None
    ) = None
    notify: Annotated[list[Annotated[str, Strict()]], Field(min_length=1)] | None = Field(
        None, description="The notifiers that hear of what it finds; as `discover:` when absent."
    )


async def looked_up(
    model: type[SearchFilters],
    body: Mapping[str, Any],
    artists: Artists | None,
    config: Config,
) -> dict[str, Any]:
    """`body`, checked as `model` says, without its nulls, and with an `artist` looked up
    for its Discovery ID (`attraction_id`) and the name Discovery knows them by."""
    shaped(model, body)
    given = {key: value for key, value in body.items() if value is not None}
    if "max_events" in given:
        given["max_events"] = int(given["max_events"])  # 3.0 is 3, as the schema says
    if not any(given.get(name) for name in SEARCH_FILTERS):
        raise Invalid(
            "say what to search for: artist, keyword, attraction_id, venue_id, "
            "country_code, city, classification or dma_id",
            field="artist",
        )
    artist = given.pop("artist", None)
    if artist is not None:
        if given.get("attraction_id"):
            raise Invalid("give an artist or an attraction_id, not both", field="artist")
        given["attraction_id"], given["artist"] = await artist_named(artists, config, artist)
    return given


async def artist_named(artists: Artists | None, config: Config, name: str) -> tuple[str, str]:
    """The Discovery ID and name of the artist called `name` (exactly, else the most
    relevant one Discovery knows)."""
    if artists is None or not config.discovery.enabled:
        raise Conflict(
            "artists are looked up in the Discovery API, which is off here "
            "(discovery.enabled): give an attraction_id",
            field="artist",
        )
    try:
        found = await artists(name)
    except MonitorError as exc:
        raise Conflict(
            f"could not look the artist up: {redact(str(exc))}", field="artist"
        ) from None
    if not found:
        raise NotFound(f"Discovery knows no artist, team or act named {name!r}", field="artist")
    chosen = next((a for a in found if (a.name or "").lower() == name.lower()), found[0])
    return chosen.id, chosen.name or name


def name_for(text: str) -> str:
    """A search's name made of what it looks for: "Florence + the Machine" is
    "florence-the-machine"."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:NAME_LENGTH].rstrip("-") or "search"


class Following:
    def __init__(
        self,
        searches: Searches,
        config: Callable[[], Config],
        clock: Callable[[], float],
        *,
        artists: Artists | None = None,
    ) -> None:
        self._searches = searches
        self._config = config
        self._clock = clock
        self._artists = artists

    async def searches(self) -> list[dict[str, Any]]:
        """Every search that adds watches: the configuration file's and those followed at
        runtime, by name."""
        config = self._config()
        declared = [
            {
                "name": search.name,
                **search.model_dump(include=set(FILTERS), exclude_none=True),
                "every": format_duration(search.every),
                "origin": "config",
            }
            for search in config.discover
        ]
        names = {search.name for search in config.discover}
        runtime = [
            document(search)
            for search in await self._searches.followed()
            if search.name not in names
        ]
        return sorted([*declared, *runtime], key=lambda search: str(search["name"]))

    async def follow(self, body: Mapping[str, Any], who: str) -> dict[str, Any]:
        """Follow the search `body` describes; an `artist` is looked up for its ID."""
        config = self._config()
        given = await looked_up(FollowInput, body, self._artists, config)
        name = given.pop("name", None)
        if name is None:
            looked_for = given.get("artist") or next(
                str(given[key]) for key in FILTERS if given.get(key)
            )
            name = name_for(looked_for)
        if any(search.name == name for search in config.discover):
            raise Conflict(f"the config file has a search named {name!r}", field="name")
        filters = _filters(given, config)
        search = Followed(name, filters, self._clock(), who)
        if not await self._searches.follow(search):
            raise Conflict(f"a search named {name!r} is followed already", field="name")
        logger.info("%s: search %s followed", who, name)
        return document(search)

    async def unfollow(self, name: str, who: str) -> None:
        if any(search.name == name for search in self._config().discover):
            raise Conflict(f"{name} comes from the config file: remove it from the config file")
        if not await self._searches.unfollow(name):
            raise NotFound(f"no search named {name!r} is followed")
        logger.info("%s: search %s removed (what it found stays until it starts)", who, name)


def _filters(given: dict[str, Any], config: Config) -> dict[str, Any]:
    """The search as a `discover:` entry (without its name), checked as the config file's."""
    filters = {key: given[key] for key in (*FILTERS, "artist") if key in given}
    if "window" in given:
        filters["window"] = format_duration(parse_duration(given["window"]))
    if "max_events" in given:
        filters["max_events"] = given["max_events"]
    watch = _watch_settings(given, config)
    if watch:
        filters["watch"] = watch
    entry = {key: value for key, value in filters.items() if key != "artist"}
    try:
        DiscoverConfig.model_validate({**entry, "name": "check"})
    except ValidationError as exc:
        raise problem_of(exc) from None
    return filters


def _watch_settings(given: dict[str, Any], config: Config) -> dict[str, Any]:
    """What the watches a search adds are told with: `notify` and `when`."""
    watch: dict[str, Any] = {}
    if "notify" in given:
        unknown = [name for name in given["notify"] if name not in config.notifiers]
        if unknown:
            raise Invalid(f"no notifier is named {unknown[0]!r} in the config file", field="notify")
        watch["notify"] = given["notify"]
    if "when" in given:
        watch["when"] = [{"field": "status", "to": given["when"]}]
    return watch


def document(search: Followed) -> dict[str, Any]:
    """A followed search as the API shows it."""
    watch = search.filters.get("watch", {})
    when = watch.get("when")
    return {
        "name": search.name,
        **{key: value for key, value in search.filters.items() if key != "watch"},
        **({"notify": watch["notify"]} if "notify" in watch else {}),
        **({"when": when[0]["to"]} if when else {}),
        "origin": "api",
        "last_run_at": None if search.last_run_at is None else iso(search.last_run_at),
        "found": search.last_matched,
    }
