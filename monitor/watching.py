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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from monitor.config import Config, EventConfig
from monitor.errors import MonitorError
from monitor.store.watches import Origin, StoredWatch, Watches

logger = logging.getLogger(__name__)

_EVENT = TypeAdapter(EventConfig)
_SETTINGS = frozenset(
    (
        "id",
        "url",
        "name",
        "interval",
        "interval_by_status",
        "notify",
        "tags",
        "priority",
        "until",
        "region",
        "market",
        "source",
        "when",
        "cooldown",
    )
)


class WatchError(MonitorError):
    """A write that cannot be done: `status` says how (400 bad input, 404 unknown watch,
    409 conflict), `field` which field is wrong, if one is."""

    def __init__(self, message: str, *, status: int, field: str | None = None) -> None:
        self.status = status
        self.field = field
        super().__init__(message)


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
            "snoozed_until": self.snoozed_until,
        }


class Watching:
    def __init__(
        self, watches: Watches, config: Callable[[], Config], clock: Callable[[], float]
    ) -> None:
        self._watches = watches
        self._config = config
        self._clock = clock

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
        for view in await self.list():
            if view.event_id == event_id:
                return view
        raise WatchError(f"no watch for event {event_id!r}", status=404)

    async def add(self, body: Mapping[str, Any], who: str) -> WatchView:
        """Watch an event given by `id` or `url`, with the settings an entry under
        `events:` takes; 409 when it is watched already."""
        event, settings = self._validated(body)
        view_id = event.id
        if any(view.event_id == view_id for view in await self.list()):
            raise WatchError(f"{view_id} is watched already", status=409, field="id")
        until = None if event.until is None else event.until.timestamp()
        stored = StoredWatch(view_id, Origin.API, None, settings, self._clock(), until)
        if not await self._watches.put(stored, self._clock(), who):
            raise WatchError(f"{view_id} is watched already", status=409, field="id")
        logger.info("%s: watch %s added", who, view_id)
        return await self.get(view_id)

    async def update(self, event_id: str, body: Mapping[str, Any], who: str) -> WatchView:
        """Change the settings of an API or search watch."""
        view = await self.get(event_id)
        if view.origin is Origin.CONFIG:
            raise WatchError(f"{event_id} comes from the config file: change it there", status=409)
        if "id" in body or "url" in body:
            raise WatchError("a watch's event cannot change", status=400, field="id")
        event, settings = self._validated({**view.settings, **body})
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
        return await self.get(event_id)

    async def remove(self, event_id: str, who: str) -> None:
        view = await self.get(event_id)
        if view.origin is Origin.CONFIG:
            raise WatchError(
                f"{event_id} comes from the config file: remove it from the config file",
                status=409,
            )
        await self._watches.remove(event_id, self._clock(), who)
        logger.info("%s: watch %s removed (its history stays)", who, event_id)

    async def pause(self, event_id: str, who: str, *, paused: bool = True) -> WatchView:
        await self.get(event_id)
        action = "pause" if paused else "resume"
        await self._watches.change(event_id, self._clock(), who, action, None, paused=paused)
        logger.info("%s: watch %s %s", who, event_id, "paused" if paused else "resumed")
        return await self.get(event_id)

    async def snooze(self, event_id: str, until: float, who: str) -> WatchView:
        await self.get(event_id)
        if until <= self._clock():
            raise WatchError("a snooze ends in the future", status=400, field="until")
        await self._watches.change(
            event_id, self._clock(), who, "snooze", {"until": until}, snoozed_until=until
        )
        logger.info("%s: watch %s snoozed", who, event_id)
        return await self.get(event_id)

    def _validated(self, body: Mapping[str, Any]) -> tuple[EventConfig, dict[str, Any]]:
        """The entry as `events:` would take it, checked the same way; and its settings, as
        given (a link stays a link: the ID and market are read from it each time)."""
        unknown = sorted(set(body) - _SETTINGS)
        if unknown:
            raise WatchError(f"unknown field {unknown[0]!r}", status=400, field=unknown[0])
        try:
            event = _EVENT.validate_python(dict(body))
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"]) or None
            message = str(error["msg"]).removeprefix("Value error, ")
            raise WatchError(message, status=400, field=field) from None
        config = self._config()
        for name in event.notify or ():
            if name not in config.notifiers:
                known = ", ".join(sorted(config.notifiers)) or "none"
                raise WatchError(
                    f"no notifier is named {name!r} (known: {known})", status=400, field="notify"
                )
        return event, dict(body)


def with_watches(config: Config, stored: Iterable[StoredWatch]) -> Config:
    """The events `config` watches: the file's own but those paused, and the watches the
    database holds besides (added through the API, or found by searches) but those paused.
    The file's own entries win over stored settings for the same event."""
    rows = list(stored)
    paused = {watch.event_id for watch in rows if watch.paused}
    configured = {event.id for event in config.events}
    events = [event for event in config.events if event.id not in paused]
    for watch in rows:
        if watch.origin is Origin.CONFIG or watch.event_id in configured | paused:
            continue
        try:
            events.append(_EVENT.validate_python(watch.settings))
        except ValidationError as exc:
            logger.warning(
                "%s cannot be watched with the settings stored for it (%s)",
                watch.event_id,
                exc.errors()[0]["msg"],
            )
    if len(events) == len(config.events) and not paused:
        return config
    return config.model_copy(update={"events": tuple(events)})


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


def entry_of(event: EventConfig) -> dict[str, Any]:
    """An event's entry as it would be written under `events:`."""
    entry: dict[str, Any] = _EVENT.dump_python(
        event, mode="json", by_alias=True, exclude_defaults=True
    )
    if event.url:
        entry.pop("id")
        entry.pop("region", None)  # the link says both
    for key in ("interval", "cooldown"):
        if key in entry:
            entry[key] = f"{entry[key]:g}s"
    if "interval_by_status" in entry:
        entry["interval_by_status"] = {
            status: f"{seconds:g}s" for status, seconds in entry["interval_by_status"].items()
        }
    return entry
