"""News about an event besides its availability: its lifecycle changing and its sale
windows opening (see `sales`), as changes routed to the notifiers that hear of them.

`lifecycle_change` is pure and tested with a table; `deliveries_of` turns any change into
its outbox rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.models import Availability, Change, SaleOpening, new_id
from monitor.notify.routing import Target, route, urgent
from monitor.store.records import NewDelivery


def deliveries_of(change: Change, targets: Sequence[Target], now: float) -> list[NewDelivery]:
    """One delivery for each target that hears of `change`."""
    return [
        NewDelivery(
            new_id(), change.id, target.notifier, now, target.cooldown, urgent(target, change)
        )
        for target in route(targets, change)
    ]


def lifecycle_change(before: str | None, after: str | None) -> tuple[str | None, str] | None:
    """Discovery's `dates.status.code` moved: onsale → canceled, postponed → rescheduled.
    Nothing when it is unknown now, or was never known (a first fetch is no news)."""
    if after is None or before is None or before == after:
        return None
    return before, after


def news(
    event_id: str,
    name: str | None,
    availability: Availability,
    now: float,
    *,
    lifecycle: tuple[str | None, str] | None = None,
    sale: SaleOpening | None = None,
) -> Change:
    """A change of another kind than inventory (a `lifecycle` move or a `sale` opening),
    holding the event's availability now."""
    return Change(
        new_id(),
        event_id,
        name,
        availability,
        availability,
        now,
        lifecycle=lifecycle,
        sale=sale,
    )
