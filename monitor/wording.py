"""How the watcher says things to people: counts ("1 event", "3 searches"), statuses in
words ("Few left"), and how long ago ("3h ago"). The dashboard and the CLI say them alike."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`count` and `noun`, in the plural unless it is one (`nouns` where adding an s, or
    es after an s, is wrong)."""
    if count == 1:
        return f"1 {noun}"
    many = nouns or (f"{noun}es" if noun.endswith(("s", "sh", "ch", "x")) else f"{noun}s")
    return f"{count:,} {many}"


STATUS_WORDS = {
    "TICKETS_AVAILABLE": "On sale",
    "FEW_TICKETS_LEFT": "Few left",
    "TICKETS_NOT_AVAILABLE": "Sold out",
    "UNKNOWN": "Unknown",
}
"""Words for the statuses; the code stays in tooltips and `--wide` tables."""
RESALE_WORDS = {
    "TICKETS_AVAILABLE": "Resale on sale",
    "TICKETS_NOT_AVAILABLE": "No resale",
    "UNKNOWN": "Unknown",
}

DETAIL_WORDS = {
    "INVALID_EVENT_ID": "Ticketmaster does not know this event",
    "NOT_SUPPORTED": "Ticketmaster gives no status in this market",
}
"""Why a status is unknown, in words (`statusDetail`); other codes are shown as they came."""


def why_unknown(status_detail: str | None) -> str | None:
    """Why Ticketmaster answered UNKNOWN, in words, if it said."""
    return None if status_detail is None else DETAIL_WORDS.get(status_detail, status_detail)


def ago(seconds: float | None) -> str:
    """How long ago, as people say it: "just now", "40s ago", "3h ago", "never"."""
    if seconds is None:
        return "never"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now" if seconds < 5 else f"{int(seconds)}s ago"
