"""How counts are said: "1 event", "2 events", "1 search", "3 searches"."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`count` and `noun`, in the plural unless it is one (`nouns` where adding an s, or
    es after an s, is wrong)."""
    if count == 1:
        return f"1 {noun}"
    many = nouns or (f"{noun}es" if noun.endswith(("s", "sh", "ch", "x")) else f"{noun}s")
    return f"{count:,} {many}"
