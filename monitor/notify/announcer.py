"""What notifiers that keep state where subscribers see it (MQTT) are told besides changes:
the watchlist as it stands, the watcher's own health, and which events left it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from monitor.models import DaemonHealth, EventStatus
from monitor.notify.notifiers.base import Notifier, StatePublisher
from monitor.store.reads import Reads
from monitor.store.rows import EventRow
from monitor.store.subscriptions import Subscriptions
from monitor.store.watches import Watches
from monitor.upstream.health import Upstream


class Announcer:
    def __init__(
        self,
        notifiers: Callable[[], dict[str, Notifier]],
        reads: Reads,
        watches: Watches,
        subscriptions: Subscriptions,
        upstream: Upstream,
    ) -> None:
        self._notifiers = notifiers
        self._reads = reads
        self._watches = watches
        self._subscriptions = subscriptions
        self._upstream = upstream

    async def states(self) -> None:
        """Baselines and renames reach state-keeping notifiers this way; changes at once."""
        await self.announce([])

    async def announce(self, removed: Sequence[str]) -> None:
        """The watchlist's states and the watcher's health; of the events in `removed`,
        those paused keep what was published, marked as not watched, and the others' is
        cleared."""
        publishers = [n for n in self._notifiers().values() if isinstance(n, StatePublisher)]
        if not publishers:
            return
        states = _statuses(await self._reads.event_rows())
        paused = await self._paused(removed) if removed else set()
        held = _statuses((await self._reads.event_rows_of(sorted(paused))).values())
        upstream = self._upstream.status
        health = DaemonHealth(upstream.last_success_at, upstream.health, upstream.quota.available)
        gone = [event_id for event_id in removed if event_id not in paused]
        for publisher in publishers:
            await publisher.publish_states(states)
            await publisher.publish_health(health)
            if held:
                await publisher.pause(held)
            if gone:
                await publisher.forget(gone)

    async def _paused(self, event_ids: Sequence[str]) -> set[str]:
        """Which of `event_ids` are paused, not gone: by a watch's pause, or by every one of
        its followers pausing theirs."""
        stored = await self._watches.get_many(event_ids)
        paused = {event_id for event_id, watch in stored.items() if watch.paused}
        followed = await self._subscriptions.paused_only(
            [event_id for event_id in event_ids if event_id not in paused]
        )
        return paused | followed


def _statuses(rows: Iterable[EventRow]) -> list[EventStatus]:
    return [
        EventStatus(
            row.event_id, row.info.name or row.name, row.current, row.last_changed_at, row.info
        )
        for row in rows
    ]
