"""Watches besides the configuration file's, and what is set on any watch.

Events `discover:` searches found (origin "discover") and events added through the API or
the CLI ("api") are kept here with the settings they are watched with; any watch, the
file's own too ("config"), has a row while it is paused or snoozed. Every write through the
API or the CLI is audited in the same transaction, and every write of any kind is logged
(`watch_changes`) in it too: every replica sharing the database follows the log within a
tick, applying each change to the one event it names. The searches' schedule is here
too: replicas take turns running them.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, NamedTuple

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.models import DeliveryState
from monitor.store.engine import reader
from monitor.store.tables import (
    audit,
    changes,
    deliveries,
    searches,
    watch_changes,
    watches,
)


class Origin(StrEnum):
    CONFIG = "config"
    """Declared in the configuration file: a reload re-applies it."""
    API = "api"
    """Added through the API or the CLI: kept across restarts and reloads."""
    DISCOVER = "discover"
    """Found by a `discover:` search: kept until it starts."""


class StoredWatch(NamedTuple):
    event_id: str
    origin: Origin
    search: str | None
    settings: dict[str, Any]
    """As an entry under `events:` says it (empty for a configuration watch's row)."""
    added_at: float
    until: float | None
    paused: bool = False
    snoozed_until: float | None = None


class AuditEntry(NamedTuple):
    at: float
    who: str
    action: str
    event_id: str
    detail: str | None


class Watches:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)

    async def stored(self) -> list[StoredWatch]:
        query = select(watches).order_by(watches.c.event_id)
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_stored(row) for row in rows]

    async def get(self, event_id: str) -> StoredWatch | None:
        async with self._reader.connect() as conn:
            row = (
                await conn.execute(select(watches).where(watches.c.event_id == event_id))
            ).first()
        return None if row is None else _stored(row)

    async def get_many(self, event_ids: Sequence[str]) -> dict[str, StoredWatch]:
        """The stored watches of `event_ids` that have one."""
        async with self._reader.connect() as conn:
            rows = (
                await conn.execute(select(watches).where(watches.c.event_id.in_(event_ids)))
            ).all()
        return {row.event_id: _stored(row) for row in rows}

    async def last_change(self) -> int:
        """The sequence number of the latest write to any watch (0 before the first)."""
        async with self._reader.connect() as conn:
            return int(await conn.scalar(select(func.max(watch_changes.c.seq))) or 0)

    async def changes_after(self, seq: int, limit: int) -> list[tuple[int, str]]:
        """Writes after `seq`, oldest first, as (sequence number, event ID)."""
        query = (
            select(watch_changes.c.seq, watch_changes.c.event_id)
            .where(watch_changes.c.seq > seq)
            .order_by(watch_changes.c.seq)
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            return [(int(seq), event_id) for seq, event_id in (await conn.execute(query)).all()]

    async def prune_changes(self, before: float) -> None:
        """Forget log entries older than `before`, the newest always kept."""
        async with self.engine.begin() as conn:
            newest = await conn.scalar(select(func.max(watch_changes.c.seq)))
            await conn.execute(
                delete(watch_changes).where(
                    watch_changes.c.at < before, watch_changes.c.seq != newest
                )
            )

    async def add(self, found: Sequence[StoredWatch]) -> list[str]:
        """Watch what searches found and is not watched yet; returns the IDs added."""
        if not found:
            return []
        async with self.engine.begin() as conn:
            known = set(
                await conn.scalars(
                    select(watches.c.event_id).where(
                        watches.c.event_id.in_([item.event_id for item in found])
                    )
                )
            )
            new = [item for item in found if item.event_id not in known]
            if new:
                await conn.execute(
                    insert(watches),
                    [_row(item, item.added_at) for item in new],
                )
                await _logged(conn, [item.event_id for item in new], new[0].added_at)
        return [item.event_id for item in new]

    async def put(self, watch: StoredWatch, now: float, who: str) -> bool:
        """Add a watch added through the API or the CLI; False when one exists already."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(_INSERT_WATCH, [_row(watch, now)])
                await _audit(conn, _entry(now, who, "add", watch.event_id, watch.settings))
                await _logged(conn, [watch.event_id], now)
        except IntegrityError:
            return False  # watched already: the key says so, no look needed first
        return True

    async def change(
        self, event_id: str, now: float, who: str, action: str, detail: object, **values: Any
    ) -> None:
        """Set `values` on the watch's row, made for a configuration watch if it has none."""
        async with self.engine.begin() as conn:
            await _changed(conn, event_id, now, who, action, detail, values)

    async def snooze(self, event_id: str, until: float | None, now: float, who: str) -> None:
        """Hold the event's messages to the config file's notifiers until `until`; a snooze
        ended or shortened lets what it held go at once (the latest state, once)."""
        held = select(changes.c.id).where(changes.c.event_id == event_id)
        # One transaction: a snooze ended is never left holding what it held.
        async with self.engine.begin() as conn:
            detail = {"until": until}
            await _changed(conn, event_id, now, who, "snooze", detail, {"snoozed_until": until})
            await conn.execute(
                update(deliveries)
                .where(
                    ~deliveries.c.notifier.startswith("@"),  # users' snoozes are their own
                    deliveries.c.state == DeliveryState.PENDING,
                    deliveries.c.next_attempt_at > (now if until is None else until),
                    deliveries.c.change_id.in_(held),
                )
                .values(next_attempt_at=now if until is None else until)
            )

    async def remove(self, event_id: str, now: float, who: str) -> None:
        """Stop watching; the audit keeps the watch as it was, so that it can be restored."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(select(watches).where(watches.c.event_id == event_id))
            ).first()
            await conn.execute(delete(watches).where(watches.c.event_id == event_id))
            kept = None if row is None else {"watch": _kept(_stored(row))}
            await _audit(conn, _entry(now, who, "remove", event_id, kept))
            await _logged(conn, [event_id], now)

    async def restore(self, event_id: str, now: float, who: str) -> bool:
        """Watch again, as it was, an event whose watch was removed last; False when its
        last write was not a removal (or it is watched again already)."""
        last = (
            select(audit.c.action, audit.c.detail)
            .where(audit.c.event_id == event_id)
            .order_by(audit.c.at.desc(), audit.c.id.desc())
            .limit(1)
        )
        try:
            async with self.engine.begin() as conn:
                entry = (await conn.execute(last)).first()
                if entry is None or entry.action != "remove" or not entry.detail:
                    return False
                kept = orjson.loads(entry.detail).get("watch")
                if kept is None:
                    return False
                settings = orjson.dumps(kept["settings"]).decode()
                await conn.execute(
                    _INSERT_WATCH, [{**kept, "settings": settings, "changed_at": now}]
                )
                await _audit(conn, _entry(now, who, "restore", event_id, None))
                await _logged(conn, [event_id], now)
        except IntegrityError:
            return False
        return True

    async def audit_of(self, event_id: str) -> list[AuditEntry]:
        query = select(audit).where(audit.c.event_id == event_id).order_by(audit.c.at, audit.c.id)
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [AuditEntry(r.at, r.who, r.action, r.event_id, r.detail) for r in rows]

    async def forget_started(self, before: float) -> int:
        """Stop watching what searches found and started before `before`; its history stays."""
        started = (watches.c.origin == Origin.DISCOVER.value) & (watches.c.until < before)
        async with self.engine.begin() as conn:
            gone = list(await conn.scalars(select(watches.c.event_id).where(started)))
            if gone:
                await conn.execute(delete(watches).where(watches.c.event_id.in_(gone)))
                await _logged(conn, gone, before)
        return len(gone)

    async def claim_search(self, name: str, now: float, lease_until: float) -> bool:
        """Whether the search `name` is due and now this replica's to run."""
        try:
            return await self._claim_search(name, now, lease_until)
        except IntegrityError:
            return False  # another replica scheduled it first

    async def _claim_search(self, name: str, now: float, lease_until: float) -> bool:
        async with self._reader.connect() as conn:
            due = await conn.scalar(select(searches.c.next_run_at).where(searches.c.name == name))
        if due is not None and due > now:
            return False  # not due: no write, no lock
        async with self.engine.begin() as conn:
            due = await conn.scalar(
                select(searches.c.next_run_at)
                .where(searches.c.name == name)
                .with_for_update(skip_locked=True)
            )
            if due is None:
                exists = await conn.scalar(select(searches.c.name).where(searches.c.name == name))
                if exists is not None:
                    return False  # another replica is running it
                await conn.execute(insert(searches).values(name=name, next_run_at=lease_until))
                return True
            if due > now:
                return False
            await conn.execute(
                update(searches).where(searches.c.name == name).values(next_run_at=lease_until)
            )
        return True

    async def searched(self, name: str, now: float, next_run_at: float, matched: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(searches)
                .where(searches.c.name == name)
                .values(next_run_at=next_run_at, last_run_at=now, last_matched=matched)
            )


def _stored(row: Any) -> StoredWatch:
    return StoredWatch(
        row.event_id,
        Origin(row.origin),
        row.search,
        orjson.loads(row.settings),
        row.added_at,
        row.until,
        bool(row.paused),
        row.snoozed_until,
    )


def _kept(watch: StoredWatch) -> dict[str, Any]:
    """A watch's row as the audit keeps it, settings as JSON."""
    row = _row(watch, watch.added_at)
    del row["changed_at"]
    return {**row, "settings": watch.settings}


def _row(watch: StoredWatch, now: float) -> dict[str, Any]:
    return {
        "event_id": watch.event_id,
        "origin": watch.origin.value,
        "search": watch.search,
        "settings": orjson.dumps(watch.settings).decode(),
        "added_at": watch.added_at,
        "until": watch.until,
        "paused": watch.paused,
        "snoozed_until": watch.snoozed_until,
        "changed_at": now,
    }


# Built once: every write runs them, and building them each time costs more than running them.
_INSERT_WATCH = insert(watches)
_INSERT_LOG = insert(watch_changes)
_INSERT_AUDIT = insert(audit)


async def _logged(conn: AsyncConnection, event_ids: Sequence[str], now: float) -> None:
    await conn.execute(_INSERT_LOG, [{"event_id": e, "at": now} for e in event_ids])


async def _audit(conn: AsyncConnection, entry: AuditEntry) -> None:
    await conn.execute(_INSERT_AUDIT, [entry._asdict()])


def _entry(now: float, who: str, action: str, event_id: str, detail: object) -> AuditEntry:
    text = None if detail is None else orjson.dumps(detail).decode()
    return AuditEntry(now, who, action, event_id, text)


async def _changed(  # noqa: PLR0917 - one write to a watch, as `Watches.change` takes it
    conn: AsyncConnection,
    event_id: str,
    now: float,
    who: str,
    action: str,
    detail: object,
    values: dict[str, Any],
) -> None:
    """Set `values` on the watch's row, made for a configuration watch if it has none;
    audited and logged for the replicas in the same transaction."""
    if "settings" in values:
        values = {**values, "settings": orjson.dumps(values["settings"]).decode()}
    changed = await conn.execute(
        update(watches).where(watches.c.event_id == event_id).values(changed_at=now, **values)
    )
    if not changed.rowcount:
        row = _row(StoredWatch(event_id, Origin.CONFIG, None, {}, now, None), now)
        await conn.execute(insert(watches).values(**{**row, **values}))
    await _audit(conn, _entry(now, who, action, event_id, detail))
    await _logged(conn, [event_id], now)
