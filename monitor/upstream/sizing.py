"""How many event IDs one request carries.

A request costs one unit of quota whatever it carries, so fuller requests mean more polls
for the same quota. The API takes up to 1,000 IDs, but a proxy on the way may refuse a
long URL first (HTTP 414) and nobody can say in advance where that limit lies. Unless a
size is pinned, it is learnt: it starts at `START`, grows after `GROW_AFTER` full requests
in a row went through, and halves at once when a request is refused as too large. Once a
size was refused, growth only closes half the gap to it, so the size settles just under
the limit instead of sawing up and down, and a refusal while growing towards it goes back
to the most that went through, not to half. The URL never grows past `max_url_bytes` either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

START = 200
API_MAX = 1000
"""The most IDs the Inventory Status API takes in one request."""
GROW_AFTER = 10
"""Full requests in a row that must pass before the size grows."""
GROWTH = 1.5


@dataclass(slots=True)
class RequestSize:
    """The request size for one endpoint: pinned by the configuration, or learnt."""

    size: int
    pinned: bool = False
    max_url_bytes: int = 8000
    grain: int = 1
    """IDs come to a request in whole groups of up to this many (batches, see
    `store.batching`): a request with less room left than one group is full. Requests are
    cut ID by ID (see `polling.pieces`), so only a partition's last one carries fewer, and
    it says nothing of the limit."""
    passed_in_a_row: int = 0
    refused_at: int | None = None
    """The smallest size refused as too large so far."""
    passed_at: int | None = None
    """The most IDs a request carried that went through, since the last refusal that
    carried fewer."""

    @classmethod
    def of(
        cls, setting: int | None, max_url_bytes: int, learnt: int | None = None, *, grain: int = 1
    ) -> RequestSize:
        """`setting` is the configured `batch_size` (None for `auto`); `learnt` what an
        earlier run found out."""
        if setting is not None:
            return cls(setting, pinned=True, max_url_bytes=max_url_bytes)
        size = START if learnt is None else max(1, min(API_MAX, learnt))
        return cls(size, max_url_bytes=max_url_bytes, grain=max(1, grain))

    def reset_to(self, other: RequestSize) -> None:
        """Take `other`'s settings and what it learnt: the clients that share this size see
        a reload's new limits at once."""
        for name in self.__slots__:
            setattr(self, name, getattr(other, name))

    def take(self, event_ids: Sequence[str], fixed_url_bytes: int) -> int:
        """How many of `event_ids`, from the first, the next request carries: at most
        `size`, and no more than keep its URL within `max_url_bytes` (at least one)."""
        room = self.max_url_bytes - fixed_url_bytes
        head = event_ids[: self.size]
        if sum(map(len, head)) + len(head) - 1 <= room:
            return max(1, len(head))  # the usual case, counted at C speed
        count = 0
        for event_id in head:
            room -= len(event_id) + (1 if count else 0)  # a comma before all but the first
            if room < 0:
                break
            count += 1
        return max(1, count)

    def passed(self, carried: int, built_at: int | None = None) -> bool:
        """A request of `carried` IDs, cut at a size of `built_at`, went through; True when
        the size grew. One cut before the size last grew says nothing of the new size."""
        if self.pinned:
            return False
        self.passed_at = max(self.passed_at or 0, carried)
        stale = built_at is not None and built_at < self.size
        if stale or carried + self.grain <= self.size or self.size >= API_MAX:
            return False
        self.passed_in_a_row += 1
        if self.passed_in_a_row < GROW_AFTER:
            return False
        self.passed_in_a_row = 0
        if self.refused_at is None:
            grown = min(API_MAX, int(self.size * GROWTH))
        else:
            grown = (self.size + self.refused_at) // 2
        if grown <= self.size:
            return False
        self.size = grown
        return True

    def refused(self, carried: int) -> bool:
        """A request of `carried` IDs was too large; False when one ID was already too many.

        Only a request carrying at most the current size halves it. One carrying more was
        built before an earlier refusal halved the size already: several requests in flight
        when the limit is first met are one lesson, not one halving each."""
        self.passed_in_a_row = 0
        if carried <= 1:
            return False
        probing = self.refused_at is not None
        self.refused_at = min(self.refused_at or carried, carried)
        if carried <= self.size:
            # Growing towards a limit met before, a refusal goes back to the most that went
            # through: probing just past the limit must not halve a size almost right.
            below = self.passed_at if self.passed_at and self.passed_at < carried else None
            self.size = (below if probing else None) or max(1, carried // 2)
            self.passed_at = below
        return True
