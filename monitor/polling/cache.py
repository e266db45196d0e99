"""What the poller remembers between polls, by batch, so that a steady poll reads no event
rows and checks as little as it can.

- The member states as of the batch's version. A version moves with every write of a
  member's state or of a membership, by any replica, so a cached copy is used only while
  the version it was read at is the one claimed.
- Whether every member is still watched: if so, the claim polls the cached dict itself.
- Until when an answer repeating the last changes nothing (no member waits on an UNKNOWN
  streak, a missed read or a snapshot).
- The digest of the last answer to each request, by its first batch, with the versions it
  left behind: the same bytes again, while nothing moved, are neither parsed nor checked.

When anything may be wrong (a write failed after the cache took it in, the watchlist was
replaced), `forget` drops it all and the database is read again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from monitor.models import EventState
from monitor.polling.detect import Rules, settled_until
from monitor.store.records import ClaimedBatch

Entry = tuple[int, dict[str, EventState]]
"""A batch's version, and its member states as of that version."""
States = dict[str, Entry]
"""By batch ID."""


class StateCache:
    def __init__(self, rules: Rules) -> None:
        self._rules = rules
        self._states: States = {}
        self._all_watched: dict[str, bool] = {}
        self._quiet_until: dict[str, float] = {}
        self._replies: dict[str, tuple[tuple[tuple[str, int], ...], bytes]] = {}

    def fresh(self, batch: ClaimedBatch) -> Entry | None:
        """The cached states of `batch`, if they are those of the version claimed."""
        cached = self._states.get(batch.id)
        return cached if cached is not None and cached[0] == batch.version else None

    def remember(
        self,
        batch_id: str,
        version: int,
        states: dict[str, EventState],
        watched: Mapping[str, object],
    ) -> Entry:
        """Keep a batch's states, with what the fast paths ask of them on every poll."""
        entry = self._states[batch_id] = (version, states)
        self._all_watched[batch_id] = states.keys() <= watched.keys()
        self._quiet_until[batch_id] = min(
            (settled_until(state, self._rules) for state in states.values()), default=math.inf
        )
        return entry

    def is_current(self, batch_id: str, states: dict[str, EventState]) -> bool:
        """Whether `states` are the very ones cached for the batch (the quiet fast path)."""
        cached = self._states.get(batch_id)
        return cached is not None and cached[1] is states

    def quiet(self, batch_id: str, states: dict[str, EventState], now: float) -> bool:
        """Whether an answer for `states` needs only its two values compared with theirs:
        they are the cached ones, and every member is settled until after `now`."""
        return self.is_current(batch_id, states) and now < self.quiet_until(batch_id)

    def all_watched(self, batch_id: str) -> bool:
        return self._all_watched.get(batch_id, False)

    def quiet_until(self, batch_id: str) -> float:
        """Until when an answer the same as the last changes nothing for the batch."""
        return self._quiet_until.get(batch_id, -math.inf)

    def drop(self, batch_id: str) -> None:
        """The batch is read from the database at its next claim."""
        self._states.pop(batch_id, None)

    def forget(self) -> None:
        """Trust nothing cached: states, what is known of them, and answers seen."""
        self._states.clear()
        self._all_watched.clear()
        self._quiet_until.clear()
        self._replies.clear()

    def answered(self, polled: Sequence[ClaimedBatch], view: States, digest: bytes) -> None:
        """The request for `polled` was answered with `digest`, leaving `view`'s versions."""
        self._replies[polled[0].id] = (versions(polled, view), digest)

    def same_answer(self, polled: Sequence[ClaimedBatch], view: States, now: float) -> bytes | None:
        """The digest of the last answer to this very request, when an answer byte for byte
        the same would change nothing: the batches' states are those it left behind (their
        versions have not moved), and none of them waits on a rule that time moves on."""
        known = self._replies.get(polled[0].id)
        if known is None or known[0] != versions(polled, view):
            return None
        if any(now >= self.quiet_until(batch.id) for batch in polled):
            return None
        return known[1]


def versions(polled: Sequence[ClaimedBatch], view: States) -> tuple[tuple[str, int], ...]:
    """The request's batches with the versions of the states cached for them."""
    return tuple((batch.id, view[batch.id][0]) for batch in polled)
