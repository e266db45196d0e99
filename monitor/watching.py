"""Watches, managed without editing YAML: the one service the JSON API, the CLI and the
dashboard use to list, add, change, pause, snooze and remove them.

A watch has an origin (see `store.watches.Origin`):
- `config` watches are declarative: a reload re-applies them, so changing or removing one
  here is refused ("remove it from the config file"); pausing and snoozing work.
- `api` watches (added here) survive restarts and reloads.
- `discover` watches are a search's; they may be changed, paused, snoozed or removed.

A paused watch is not polled; its state and history stay. A snoozed one is polled and its
changes are stored, but delivered only when the snooze ends: then the latest state, once,
if it differs from what was last delivered. Every write is audited (who, what, when), and
every replica follows it within a tick (`Watches.version`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from monitor.config import Config, EventConfig
from monitor.errors import Conflict, Invalid, NotFound
from monitor.inputs import (
    EVENT,
    SettingsInput,
    WatchInput,
    not_null,
    problem_of,
    shaped,
    snooze_end,
)
from monitor.store.watches import AuditEntry, Origin, StoredWatch, Watches
from monitor.times import iso

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WatchView:
    event_id: str
    origin: Origin
    name: str | None
    search: str | None
    settings: Mapping[str, Any]
    paused: bool
    snoozed_until: float | None

    def document(self) -> dict[str, Any]:
        return {
            "id": self.event_id,
            "origin": self.origin.value,
            "name": self.name,
            "search": self.search,
            "settings": dict(self.settings),
            "paused": self.paused,
            "snoozed_until": None if self.snoozed_until is None else iso(self.snoozed_until),
        }


class Watching:
    def __init__(
        self,
        watches: Watches,
        config: Callable[[], Config],
        clock: Callable[[], float],
        changed: Callable[[Sequence[str]], Awaitable[None]] | None = None,
        released: Callable[[], None] | None = None,
    ) -> None:
        self._watches = watches
        self._released = released
        """Wakes this process's dispatcher: a snooze ended lets what it held go now."""
        self._config = config
        self._clock = clock
        self._changed = changed
        """Applies a write to this process's watchlist at once (a daemon's, where the
        service runs in one), for the one event written; other processes follow the watch
        log within a tick."""

    async def _written(self, event_id: str) -> None:
        if self._changed is not None:
            await self._changed([event_id])

    async def list(self) -> list[WatchView]:
        config = self._config()
        stored = {watch.event_id: watch for watch in await self._watches.stored()}
        views = [_of_config(event, stored.get(event.id)) for event in config.events]
        configured = {event.id for event in config.events}
        views.extend(
            _of_stored(watch)
            for watch in stored.values()
            if watch.origin is not Origin.CONFIG and watch.event_id not in configured
        )
        return sorted(views, key=lambda view: view.event_id)

    async def get(self, event_id: str) -> WatchView:
        stored = await self._watches.get(event_id)
        configured = next((e for e in self._config().events if e.id == event_id), None)
        if configured is not None:
            return _of_config(configured, stored)
        if stored is None or stored.origin is Origin.CONFIG:
            raise NotFound(f"no watch for event {event_id!r}")
        return _of_stored(stored)

    async def add(self, body: Mapping[str, Any], who: str) -> WatchView:
        """Watch an event given by `id` or `url`, with the settings an entry under
        `events:` takes (a null is no setting); 409 when it is watched already."""
        not_null(body, "id", "url")
        if body.get("url") is not None and body.get("region") is not None:
            raise Invalid("give a link or a region: the link says its region", field="region")
        event, settings = self._validated(_set(body))
        view_id = event.id
        if any(configured.id == view_id for configured in self._config().events):
            raise Conflict(f"{view_id} is watched already", field="id")
        until = None if event.until is None else event.until.timestamp()
        stored = StoredWatch(view_id, Origin.API, None, settings, self._clock(), until)
        if not await self._watches.put(stored, self._clock(), who):
            raise Conflict(f"{view_id} is watched already", field="id")
        await self._written(view_id)
        logger.info("%s: watch %s added", who, view_id)
        return _of_stored(stored)

    async def update(self, event_id: str, body: Mapping[str, Any], who: str) -> WatchView:
        """Change the settings of an API or search watch: those given replace the stored
        ones, and a null removes one."""
        view = await self.get(event_id)
        if view.origin is Origin.CONFIG:
            raise Conflict(f"{event_id} comes from the config file: change it there")
        if "id" in body or "url" in body:
            field = "id" if "id" in body else "url"
            raise Invalid("a watch's event cannot change", field=field)
        if body.get("region") is not None and view.settings.get("url"):
            raise Conflict("this watch's link says its region", field="region")
        shaped(SettingsInput, body)
        event, settings = self._validated(_set({**view.settings, **body}))
        until = None if event.until is None else event.until.timestamp()
        await self._watches.change(
            event_id,
            self._clock(),
            who,
            "change",
            dict(body),
            settings=settings,
            until=until,
        )
        await self._written(event_id)
        logger.info("%s: watch %s changed", who, event_id)
        return await self.get(event_id)

    async def remove(self, event_id: str, who: str) -> None:
        view = await self.get(event_id)
        if view.origin is Origin.CONFIG:
            raise Conflict(
                f"{event_id} comes from the config file: remove it from the config file",
            )
        await self._watches.remove(event_id, self._clock(), who)
        await self._written(event_id)
        logger.info("%s: watch %s removed (its history stays)", who, event_id)

    async def restore(self, event_id: str, who: str) -> WatchView:
        """Undo the removal of a watch: watched again with the settings it had."""
        if not await self._watches.restore(event_id, self._clock(), who):
            raise Conflict(f"there is no removal of {event_id} to undo")
        await self._written(event_id)
        logger.info("%s: watch %s restored", who, event_id)
        return await self.get(event_id)

    async def pause(self, event_id: str, who: str, *, paused: bool = True) -> WatchView:
        await self.get(event_id)
        action = "pause" if paused else "resume"
        await self._watches.change(event_id, self._clock(), who, action, None, paused=paused)
        await self._written(event_id)
        logger.info("%s: watch %s %s", who, event_id, "paused" if paused else "resumed")
        return await self.get(event_id)

    async def snooze(self, event_id: str, body: Mapping[str, Any], who: str) -> WatchView:
        """Hold the watch's deliveries `{"for": "2h"}` or `{"until": ISO}`; a snooze that
        ends now or earlier (`{"for": "0s"}`) ends the one in force."""
        await self.get(event_id)
        now = self._clock()
        until: float | None = snooze_end(body, now)
        if until is not None and until <= now:
            until = None
        await self._watches.snooze(event_id, until, now, who)
        await self._written(event_id)
        if self._released is not None:
            self._released()
        logger.info("%s: watch %s %s", who, event_id, "snoozed" if until else "unsnoozed")
        return await self.get(event_id)

    async def audit(self, event_id: str) -> Sequence[AuditEntry]:
        """Every write to the watch: who, what and when, oldest first."""
        return await self._watches.audit_of(event_id)

    def _validated(self, body: Mapping[str, Any]) -> tuple[EventConfig, dict[str, Any]]:
        """The entry as `events:` would take it, checked the same way; and its settings, as
        given (a link stays a link, as rebuilt from its parts: the ID and market are read from
        it each time)."""
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise Invalid(f"unknown field {unknown[0]!r}", field=unknown[0])
        try:
            event = EVENT.validate_python(dict(body))
        except ValidationError as exc:
            raise problem_of(exc) from None
        shaped(WatchInput, body)
        config = self._config()
        for name in event.notify or ():
            if name not in config.notifiers:
                known = ", ".join(sorted(config.notifiers)) or "none"
                raise Invalid(f"no notifier is named {name!r} (known: {known})", field="notify")
        return event, {**body, "url": event.url} if event.url else dict(body)


_FIELDS = frozenset(field.alias or name for name, field in WatchInput.model_fields.items())


def _set(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


def _of_config(event: EventConfig, stored: StoredWatch | None) -> WatchView:
    return WatchView(
        event.id,
        Origin.CONFIG,
        event.name,
        None,
        {"id": event.id},
        stored is not None and stored.paused,
        None if stored is None else stored.snoozed_until,
    )


def _of_stored(watch: StoredWatch) -> WatchView:
    return WatchView(
        watch.event_id,
        watch.origin,
        watch.settings.get("name"),
        watch.search,
        watch.settings,
        watch.paused,
        watch.snoozed_until,
    )
