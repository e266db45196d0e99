"""Sale windows: which opened since a time, when the next opens, and the bursts of polls
around their openings, when tickets appear and vanish (`polling.sale_burst`: from `before`
a window opens until `after` it, its event is polled every `interval`).

Pure rules, tested with tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from monitor.models import SaleOpening

LONGEST_AFTER = 86400.0
"""`sale_burst.after` is at most a day: an opening older than that bursts no more."""


def sales_opened(
    sales: Sequence[SaleOpening], seen_until: float | None, now: float
) -> list[SaleOpening]:
    """The sale windows that opened after `seen_until` and by `now`, oldest first. Nothing
    before the first look (`seen_until` None): a sale that opened before the event was
    watched is no news."""
    if seen_until is None:
        return []
    return sorted(
        (sale for sale in sales if seen_until < sale.starts_at <= now),
        key=lambda sale: sale.starts_at,
    )


def next_sale(sales: Sequence[SaleOpening], after: float) -> float | None:
    """When the next sale window opens after `after`."""
    return min((sale.starts_at for sale in sales if sale.starts_at > after), default=None)


def burst_until(openings: Iterable[float], now: float, before: float, after: float) -> float | None:
    """When the burst the event is in at `now` ends; None when it is in none."""
    ends = [start + after for start in openings if start - before <= now < start + after]
    return max(ends, default=None)


def next_burst_opening(openings: Iterable[float], now: float, after: float) -> float | None:
    """The first opening whose burst has not ended by `now`."""
    return min((start for start in openings if start + after > now), default=None)
