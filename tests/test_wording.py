"""Counts and refusals in words: no "1 notifiers", no regular expression as an answer."""

from __future__ import annotations

import pytest

from monitor.errors import Refused
from monitor.inputs import SnoozeInput, WatchInput, shaped
from monitor.wording import plural

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("count", "noun", "said"),
    [
        (0, "event", "0 events"),
        (1, "event", "1 event"),
        (2, "search", "2 searches"),
        (1, "search", "1 search"),
        (1200, "ID", "1,200 IDs"),
        (3, "new Oasis show", "3 new Oasis shows"),
    ],
)
def test_plural(count: int, noun: str, said: str) -> None:
    assert plural(count, noun) == said


@pytest.mark.parametrize(
    ("model", "body", "field", "says"),
    [
        (SnoozeInput, {"for": "2hours"}, "for", "use a number with s, m, h or d, e.g. 2h"),
        (WatchInput, {"id": "E1", "interval": "soon"}, "interval", "e.g. 2h"),
        (WatchInput, {"id": "E1", "until": "tomorrow"}, "until", "like 2026-12-24T18:00:00Z"),
        (WatchInput, {"id": "E1", "region": "XX"}, "region", "is not one of "),
    ],
)
def test_a_value_of_the_wrong_form_is_refused_in_words(
    model: type[SnoozeInput] | type[WatchInput], body: dict[str, str], field: str, says: str
) -> None:
    with pytest.raises(Refused) as refused:
        shaped(model, body)
    assert refused.value.field == field
    assert says in str(refused.value)
    assert "^(" not in str(refused.value), "never the pattern itself"
