"""When events are due: the start-up spread that keeps batches full without firing all at once."""

from __future__ import annotations

import math
from collections.abc import Sequence


def spread_due_times(
    event_ids: Sequence[str], interval: float, batch_size: int, start: float
) -> dict[str, float]:
    """Due times for events that share `interval`, spread over one interval in whole batches.

    Events are cut into batches of `batch_size`; batch k of n is due at
    `start + k * interval / n`. A small watchlist stays one request, a large one
    becomes an even stream of full requests instead of one burst.
    """
    if not event_ids:
        return {}
    slots = math.ceil(len(event_ids) / batch_size)
    step = interval / slots
    return {
        event_id: start + (index // batch_size) * step for index, event_id in enumerate(event_ids)
    }
