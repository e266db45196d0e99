"""Event IDs, links and markets: what a request for an event must carry.

Ticketmaster knows an event by two IDs. The *universal* one (`vvG1zZ9pCY3Sp3`) is the
Discovery API's and goes to the main endpoint; the *legacy* one (16 hex digits, the one in
a ticketmaster.com link) goes to `/legacy`. Events in the UK and Ireland answer only when
the request says `region=UK`; French, Italian and Turkish ones always answer UNKNOWN.

Requests never mix what the API asks to keep apart, so all of that is part of an event's
*partition*: `source/region` for the market, with `/legacy` for legacy IDs ("" when the
event needs nothing special, as most do).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import SplitResult, urlsplit


class IdKind(StrEnum):
    UNIVERSAL = "universal"
    LEGACY = "legacy"


LEGACY_ID = re.compile(r"[0-9A-Fa-f]{16}")
UNIVERSAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
UK_REGIONS = frozenset({"GB", "IE"})
"""Markets whose events need `region=UK` on every request."""
UNSUPPORTED_MARKETS = {"FR": "France", "IT": "Italy", "TR": "Turkey"}
"""Markets whose events the Inventory Status API always answers UNKNOWN."""

# Each market's site, by the end of its host name (longest first where one ends another).
MARKET_HOSTS: dict[str, str] = {
    "ticketmaster.com.au": "AU",
    "ticketmaster.com.mx": "MX",
    "ticketmaster.com.tr": "TR",
    "ticketmaster.co.uk": "GB",
    "ticketmaster.co.nz": "NZ",
    "ticketmaster.com": "US",
    "ticketmaster.ca": "CA",
    "ticketmaster.ie": "IE",
    "ticketmaster.de": "DE",
    "ticketmaster.nl": "NL",
    "ticketmaster.be": "BE",
    "ticketmaster.at": "AT",
    "ticketmaster.ch": "CH",
    "ticketmaster.dk": "DK",
    "ticketmaster.fi": "FI",
    "ticketmaster.no": "NO",
    "ticketmaster.se": "SE",
    "ticketmaster.es": "ES",
    "ticketmaster.pl": "PL",
    "ticketmaster.cz": "CZ",
    "ticketmaster.fr": "FR",
    "ticketmaster.it": "IT",
}
_SITES = {market: host for host, market in MARKET_HOSTS.items()}
_EVENT_PATH = re.compile(r"/event/([^/?#]+)/?$")
_SLUG = re.compile(r"(/[A-Za-z0-9._~%-]+)*")
"""What a link's path may hold before `/event/<ID>` to be kept: a page's name, no more."""
_HOST = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)+")


_LINK_HOSTS = "|".join(
    re.escape(host) for host, market in MARKET_HOSTS.items() if market not in UNSUPPORTED_MARKETS
)
EVENT_LINK = (
    rf"^https?://(?:[a-z0-9-]+\.)*(?:{_LINK_HOSTS})(?:/[A-Za-z0-9._~%-]+)*"
    rf"/event/(?:{LEGACY_ID.pattern}|{UNIVERSAL_ID.pattern})/?(?:\?[^#\\]*)?(?:#[^\\]*)?$"
)
"""The links the API takes, as a pattern its document can state: `parse_event_url` reads a
pasted link more freely (any case, a default port), and every link this matches it reads."""


class BadEventId(ValueError):
    """An ID or link that names no event the API can be asked about; says why."""


def id_kind(event_id: str) -> IdKind:
    """Which endpoint takes `event_id`; BadEventId, with a hint, when neither does."""
    if LEGACY_ID.fullmatch(event_id):
        return IdKind.LEGACY
    if UNIVERSAL_ID.fullmatch(event_id):
        return IdKind.UNIVERSAL
    if "://" in event_id or "ticketmaster." in event_id.lower():
        raise BadEventId("this is a link, not an ID: give it as `url:` instead of `id:`")
    raise BadEventId(
        f"{event_id!r} is not an event ID: expected a universal ID (letters and digits, "
        "such as vvG1zZ9pCY3Sp3) or a legacy one (16 hex digits, such as 0B005F8BC6A04A1B)"
    )


@dataclass(frozen=True, slots=True)
class EventLink:
    """What a pasted event link says: the ID, which kind it is, and the market's region."""

    event_id: str
    kind: IdKind
    region: str
    url: str
    """The link rebuilt from its checked parts, never as it was typed: a link is shown on
    pages and in notifications, where a crafted one would send people elsewhere."""


def parse_event_url(url: str) -> EventLink:
    """The event a Ticketmaster link points at: any market's site, any slug, with or
    without a query string. BadEventId says what is wrong with any other link."""
    parts = _web_link(url)
    host = (parts.hostname or "").lower()
    region = _market_of(host)
    found = _EVENT_PATH.search(parts.path)
    if found is None:
        raise BadEventId(
            f"the link does not point at an event (expected …/event/<ID> in the path, "
            f"got {parts.path or '/'})"
        )
    event_id = found.group(1)
    kind = id_kind(event_id)
    slug = parts.path[: found.start()]
    slug = slug if _SLUG.fullmatch(slug) else ""
    return EventLink(event_id, kind, region, f"https://{host}{slug}/event/{event_id}")


def _web_link(url: str) -> SplitResult:
    """`url` split, if it is a plain web link to a Ticketmaster-like host: no backslash,
    no user or password, no port but the scheme's own."""
    text = url.strip()
    if "\\" in text:
        # Python and browsers disagree on where a host ends at a backslash.
        raise BadEventId("a link with a backslash is refused (browsers read its host otherwise)")
    not_web = f"{url!r} is not a web link (expected https://www.ticketmaster...)"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise BadEventId(not_web) from None
    if parts.scheme not in ("http", "https") or not _HOST.fullmatch((parts.hostname or "").lower()):
        raise BadEventId(not_web)
    if "@" in parts.netloc:
        raise BadEventId("a link with a user name or password before its host is refused")
    if port is not None and port != (443 if parts.scheme == "https" else 80):
        raise BadEventId(f"a Ticketmaster link has no port; this one gives {port}")
    return parts


def _market_of(host: str) -> str:
    """The market whose Ticketmaster site `host` is, if its events can be watched."""
    region = next(
        (m for suffix, m in MARKET_HOSTS.items() if host == suffix or host.endswith("." + suffix)),
        None,
    )
    if region is None:
        raise BadEventId(f"{host} is not a Ticketmaster site")
    if region in UNSUPPORTED_MARKETS:
        raise BadEventId(
            f"events in {UNSUPPORTED_MARKETS[region]} cannot be watched: the Inventory Status "
            "API answers UNKNOWN for every one of them"
        )
    return region


@functools.cache  # one string per partition, however many events share it
def partition(source: str | None, region: str | None, kind: IdKind) -> str:
    """The key of the requests an event may share (see the module's docstring)."""
    legacy = kind is IdKind.LEGACY
    if source is None and region is None and not legacy:
        return ""
    market = f"{source or ''}/{region or ''}"
    return f"{market}/legacy" if legacy else market


@dataclass(frozen=True, slots=True)
class RequestKind:
    """What a request for one partition's events carries besides their IDs."""

    legacy: bool = False
    region: str | None = None
    """The `region` query parameter: "UK" for GB and IE, else none."""


PLAIN = RequestKind()
"""Universal IDs, no region: what most requests are."""


def request_kind(partition_key: str) -> RequestKind:
    if not partition_key:
        return PLAIN
    parts = partition_key.split("/")
    region = parts[1] if len(parts) > 1 else ""
    return RequestKind(
        legacy=len(parts) > 2 and parts[2] == "legacy",
        region="UK" if region in UK_REGIONS else None,
    )


def event_link(event_id: str, region: str | None, url: str | None = None) -> str:
    """Where a person sees the event: its own link when known, else its market's site."""
    if url:
        return url
    host = _SITES.get(region or "US", "ticketmaster.com")
    return f"https://www.{host}/event/{event_id}"


_SLUG_NOISE = {"tickets", "ticket", "event", "events"}


def slug_words(link: str | None) -> str | None:
    """The words of a link's slug (`/oasis-live-25-tickets/event/…` → "oasis live 25")."""
    if not link:
        return None
    parts = [p for p in urlsplit(link).path.split("/") if p]
    if "event" not in parts or parts.index("event") == 0:
        return None
    slug = parts[parts.index("event") - 1]
    words = [w for w in re.split(r"[-_+]+", slug) if w and w.lower() not in _SLUG_NOISE]
    return " ".join(words) or None
