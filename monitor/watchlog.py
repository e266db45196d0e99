"""Following the log of watch writes (`watch_changes`) without missing or repeating one.

Sequence numbers are handed out when a write begins and become visible when it commits, so
on PostgreSQL two writers can commit out of order: a follower may see 12 before 11. The
cursor therefore keeps the highest number below which it has seen everything (`floor`), and
remembers what it applied above it. A hole is waited for a while, then given up: a number
whose write rolled back is never filled.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

HOLE_WAIT = 30.0
"""Seconds a hole in the log is waited for before it counts as a rolled-back write."""


@dataclass(slots=True)
class LogCursor:
    floor: int = 0
    """Every entry up to this one was applied (or is a hole given up on)."""
    applied: set[int] = field(default_factory=set)
    """Entries above the floor already applied."""
    holes: dict[int, float] = field(default_factory=dict)
    """Missing entries above the floor, and when each was first missed."""

    def take(self, entries: Iterable[tuple[int, str]], now: float) -> list[str]:
        """The event IDs of `entries` (read as those after `floor`) not applied yet, each
        once, oldest first; the cursor then counts them as applied."""
        fresh: list[str] = []
        expected = self.floor + 1
        for seq, event_id in entries:
            for missing in range(expected, seq):
                if missing not in self.applied:
                    self.holes.setdefault(missing, now)
            expected = max(expected, seq + 1)
            if seq in self.applied:
                continue
            self.applied.add(seq)
            self.holes.pop(seq, None)
            if event_id not in fresh:
                fresh.append(event_id)
        self._advance(now)
        return fresh

    def _advance(self, now: float) -> None:
        for seq, since in list(self.holes.items()):
            if now - since >= HOLE_WAIT:
                del self.holes[seq]
                self.applied.add(seq)
        while self.floor + 1 in self.applied:
            self.floor += 1
            self.applied.discard(self.floor)
