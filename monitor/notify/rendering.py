"""Message text for people (log, email, chat) from Jinja2 templates with good defaults.

A template sees: `title` (the event's name, else its ID), `event_id`, `event_name`,
`previous` and `current` (each with `status`, `resale_status`, and `status_words`),
`changed` (field names), `observed_at` (RFC 3339), `url` (the event's page on its market's
site), `starts` (the start in the venue's time, "Sat 12 Jul 2027, 19:30"), `venue`
("Wembley Stadium, London"), `lifecycle` (onsale, canceled, …; the last three empty when
unknown), `kind` (inventory, lifecycle or sale_opened), `headline` (what happened, in words,
for every kind: "few tickets left", "canceled (was onsale)", "presale Fan presale opened")
and `test` (true for `notify test`) — all of the first change — and `changes`, the list of
every change the message carries (several with a `group_window`), each with those keys.
For a change of another kind than inventory, `previous` and `current` are both the event's
availability when it happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jinja2 import Environment, StrictUndefined

from monitor.models import Availability, Change
from monitor.notify.documents import event_info, is_test
from monitor.times import iso, local_time

DEFAULT_SUBJECT = "{{ title }}: {{ headline }}"
TEST_MARK = "[test]"
"""Every subject and line of a test message starts with it, whatever the template."""
DEFAULT_LINE = (
    "{% for c in changes %}{% with %}{% set title = c.title %}{% set event_name = c.event_name %}"
    "{% set event_id = c.event_id %}{% set previous = c.previous %}{% set current = c.current %}"
    "{% set changed = c.changed %}{% if not loop.first %}\n{% endif %}"
    "{% if test %}[test] {% endif %}{{ title }}{% if event_name %} ({{ event_id }}){% endif %}: "
    "{% if c.kind != 'inventory' %}{{ c.headline }}{% elif previous %}"
    "{% if 'status' in changed %}status {{ previous.status }} → {{ current.status }}{% endif %}"
    "{% if changed|length > 1 %}; {% endif %}"
    "{% if 'resale_status' in changed %}resale {{ previous.resale_status }} → "
    "{{ current.resale_status }}{% endif %}"
    "{% else %}first seen with status {{ current.status }}, resale {{ current.resale_status }}"
    "{% endif %}{% endwith %}{% endfor %}"
)
DEFAULT_TEXT = """\
{% if test %}This is a test message from inventory-monitor; nothing has changed.

{% endif %}{% for c in changes %}{{ c.title }} ({{ c.event_id }})
{% if c.starts %}When:    {{ c.starts }}
{% endif %}{% if c.venue %}Where:   {{ c.venue }}
{% endif %}
{% if c.kind == 'inventory' -%}
Status:  {{ c.previous.status if c.previous else '-' }} → {{ c.current.status }}
Resale:  {{ c.previous.resale_status if c.previous else '-' }} → {{ c.current.resale_status }}
{% else %}News:    {{ c.headline }}
{% endif %}Seen at: {{ c.observed_at }}

{{ c.url }}
{% if not loop.last %}
{% endif %}{% endfor %}"""
DEFAULT_HTML = """\
<html><body style="font-family: sans-serif">
{% if test %}
<p><strong>This is a test message from inventory-monitor; nothing has changed.</strong></p>
{% endif %}
{% for c in changes %}
<h2>{{ c.title }}: {{ c.headline }}</h2>
<table cellpadding="4">
{% if c.starts %}<tr><th align="left">When</th><td>{{ c.starts }}</td></tr>{% endif %}
{% if c.venue %}<tr><th align="left">Where</th><td>{{ c.venue }}</td></tr>{% endif %}
{% if c.kind == 'inventory' %}<tr><th align="left">Status</th>
<td>{{ c.previous.status if c.previous else '-' }} →
<strong>{{ c.current.status }}</strong></td></tr>
<tr><th align="left">Resale</th>
<td>{{ c.previous.resale_status if c.previous else '-' }} →
<strong>{{ c.current.resale_status }}</strong></td></tr>
{% endif %}<tr><th align="left">Seen at</th><td>{{ c.observed_at }}</td></tr>
</table>
<p><a href="{{ c.url }}">{{ c.title }} on Ticketmaster</a></p>
{% endfor %}
</body></html>
"""

_text = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)  # noqa: S701 - plain text, never HTML
_html = Environment(undefined=StrictUndefined, autoescape=True)


def _side(availability: Availability | None) -> dict[str, str] | None:
    if availability is None:
        return None
    return {
        "status": availability.status.value,
        "resale_status": availability.resale_status.value,
        "status_words": availability.status.words,
    }


def context(changes: Sequence[Change]) -> dict[str, Any]:
    each = [_one(change) for change in changes]
    return {**each[0], "changes": each, "test": is_test(changes[0])}


def _one(change: Change) -> dict[str, Any]:
    info = event_info(change)
    return {
        "title": change.title,
        "event_id": change.event_id,
        "event_name": change.known_name,
        "previous": _side(change.previous),
        "current": _side(change.current),
        "changed": list(change.changed),
        "observed_at": iso(change.observed_at),
        "url": info.url,
        "starts": local_time(info.starts_at, info.timezone),
        "venue": ", ".join(part for part in (info.venue.name, info.venue.city) if part),
        "lifecycle": info.lifecycle or "",
        "kind": change.kind.value,
        "headline": headline(change),
    }


def headline(change: Change) -> str:
    """What happened, in words."""
    if change.lifecycle is not None:
        before, after = change.lifecycle
        return f"{after} (was {before})" if before else after
    if change.sale is not None:
        sale = change.sale
        what = "public sale" if sale.kind == "public" else f"presale {sale.name or ''}".strip()
        return f"{what} opened"
    return change.current.status.words


class Renderer:
    """Subject and bodies of one notifier, compiled once."""

    def __init__(
        self,
        *,
        subject: str | None = None,
        body: str | None = None,
        html: str | None = None,
        default_body: str = DEFAULT_TEXT,
    ) -> None:
        self._subject = _text.from_string(subject or DEFAULT_SUBJECT)
        self._body = _text.from_string(body or default_body)
        self._html = _html.from_string(html or DEFAULT_HTML)

    def subject(self, changes: Sequence[Change]) -> str:
        subject = self._subject.render(context(changes)).strip()
        if is_test(changes[0]) and not subject.startswith(TEST_MARK):
            subject = f"{TEST_MARK} {subject}"
        return subject

    def body(self, changes: Sequence[Change]) -> str:
        return self._body.render(context(changes))

    def html(self, changes: Sequence[Change]) -> str:
        return self._html.render(context(changes))
