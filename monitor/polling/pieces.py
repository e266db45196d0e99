"""Requests filled ID by ID: the batches a claim took, cut into requests of the request size.

A claim takes whole batches (up to 100 events each), grouped by what their requests must
carry. Sent as claimed, a request holds only whole batches: with room for 262 IDs it would
carry 200, and its size would never count as full enough to grow (see `upstream.sizing`).
So a partition's batches are laid end to end and cut every `size` IDs: every request but a
partition's last is full, and a batch may be carried by two requests (or more, should the
size fall under a batch's). Such a batch is recorded once every request that carried a part
of it has answered, as one poll; if any of them failed, the batch failed.

A batch with failed polls behind it still goes alone, as the claim made it: whatever made
it fail must not fail the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from monitor.models import EventState
from monitor.store.records import ClaimedBatch
from monitor.upstream.answers import Found


@dataclass(frozen=True, slots=True)
class Part:
    """What one request carries of one batch."""

    batch: ClaimedBatch
    members: dict[str, EventState]
    """The events of the batch this request asks for."""
    whole: bool
    """Whether these are all the events of the batch this poll asks for."""


def cut(
    requests: Sequence[Sequence[tuple[ClaimedBatch, dict[str, EventState]]]], size: int
) -> list[list[Part]]:
    """The claimed requests (each batch with the events to ask for) as requests of at most
    `size` IDs, in the claim's order within each partition."""
    pieces: list[list[Part]] = []
    streams: dict[str, list[tuple[ClaimedBatch, dict[str, EventState]]]] = {}
    for request in requests:
        if len(request) == 1 and request[0][0].failures:
            batch, members = request[0]
            pieces.append([Part(batch, members, whole=True)])
            continue
        for batch, members in request:
            streams.setdefault(batch.partition, []).append((batch, members))
    for stream in streams.values():
        pieces.extend(_laid_end_to_end(stream, max(1, size)))
    return pieces


def _laid_end_to_end(
    stream: list[tuple[ClaimedBatch, dict[str, EventState]]], size: int
) -> list[list[Part]]:
    pieces: list[list[Part]] = []
    current: list[Part] = []
    room = size
    for batch, members in stream:
        if len(members) <= room:
            current.append(Part(batch, members, whole=True))
            room -= len(members)
        else:
            items = list(members.items())
            while items:
                if room == 0:
                    pieces.append(current)
                    current, room = [], size
                taken, items = items[:room], items[room:]
                current.append(Part(batch, dict(taken), whole=False))
                room -= len(taken)
        if room == 0:
            pieces.append(current)
            current, room = [], size
    if current:
        pieces.append(current)
    return pieces


@dataclass(slots=True)
class Joins:
    """The answers to the batches carried in parts by several requests, gathered until
    each request that carried a part has answered."""

    _waiting: dict[str, int] = field(default_factory=dict)
    _found: dict[str, Found] = field(default_factory=dict)
    _failure: dict[str, BaseException] = field(default_factory=dict)

    @classmethod
    def of(cls, pieces: Sequence[Sequence[Part]]) -> Joins:
        joins = cls()
        for piece in pieces:
            for part in piece:
                if not part.whole:
                    batch_id = part.batch.id
                    joins._waiting[batch_id] = joins._waiting.get(batch_id, 0) + 1
        return joins

    def answered(self, part: Part, found: Found) -> Found | BaseException | None:
        """One request's answers for `part`; the batch's outcome once its last part is in:
        all its answers, or the first failure of a request that carried it."""
        self._found.setdefault(part.batch.id, {}).update(
            (event_id, found[event_id]) for event_id in part.members if event_id in found
        )
        return self._settle(part.batch.id)

    def failed(self, part: Part, error: BaseException) -> Found | BaseException | None:
        """A request that carried `part` failed (or was held); as `answered`."""
        self._failure.setdefault(part.batch.id, error)
        return self._settle(part.batch.id)

    def _settle(self, batch_id: str) -> Found | BaseException | None:
        self._waiting[batch_id] -= 1
        if self._waiting[batch_id]:
            return None
        failure = self._failure.pop(batch_id, None)
        found = self._found.pop(batch_id, {})
        return found if failure is None else failure
