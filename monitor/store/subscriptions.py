"""Users following events: each subscription with its own settings, pause and snooze.

Every write is logged for its event in the same transaction (`watch_changes`), as a watch's
is: every replica then looks at that one event again, and polls it once for all who follow
it. Reads for the watchlist (`audience`) leave out paused subscriptions and disabled users.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.models import DeliveryState
from monitor.store.accounts import Exists, OverLimit, Role, User, notifier_name
from monitor.store.engine import reader
from monitor.store.tables import (
    changes,
    channels,
    deliveries,
    subscriptions,
    user_searches,
    users,
    watch_changes,
)


class Subscription(NamedTuple):
    user_id: str
    event_id: str
    settings: dict[str, Any]
    """The event as given (`id` or `url`, `region`), `notify`, `when`, the news wanted
    (`resale`, `lifecycle`, `sales`) and `interval` in seconds."""
    paused: bool
    snoozed_until: float | None
    added_at: float
    search: str | None = None
    """The user's search that found the event; None when they chose it themselves."""
    until: float | None = None
    """A found event's start: the subscription ends an hour after it."""


class UserSearch(NamedTuple):
    user_id: str
    user: str
    name: str
    filters: dict[str, Any]
    """As an entry under `discover:` says it."""
    added_at: float


class Follower(NamedTuple):
    """Someone who hears of an event: who, on which of their channels, about what."""

    user: str
    role: Role
    settings: dict[str, Any]
    channels: tuple[str, ...]
    """Every channel the user has, in name order."""


_INSERT_LOG = insert(watch_changes)


class Subscriptions:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)

    async def of_user(self, user_id: str) -> list[Subscription]:
        query = (
            select(subscriptions)
            .where(subscriptions.c.user_id == user_id)
            .order_by(subscriptions.c.event_id)
        )
        async with self._reader.connect() as conn:
            return [_subscription(row) for row in (await conn.execute(query)).all()]

    async def get(self, user_id: str, event_id: str) -> Subscription | None:
        query = select(subscriptions).where(
            subscriptions.c.user_id == user_id, subscriptions.c.event_id == event_id
        )
        async with self._reader.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _subscription(row)

    async def add(self, subscription: Subscription, limit: int | None) -> None:
        """Exists when the user follows the event already; OverLimit past `limit`."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(subscriptions).values(**_row(subscription)))
                if limit is not None:
                    count = await conn.scalar(
                        select(func.count()).where(subscriptions.c.user_id == subscription.user_id)
                    )
                    if (count or 0) > limit:
                        raise OverLimit(limit)  # the insert is rolled back
                await _logged(conn, [subscription.event_id], subscription.added_at)
        except IntegrityError:
            raise Exists(subscription.event_id) from None

    async def change(self, user_id: str, event_id: str, now: float, **values: Any) -> bool:
        """Set `values` on the subscription; False when there is none."""
        if "settings" in values:
            values["settings"] = orjson.dumps(values["settings"]).decode()
        async with self.engine.begin() as conn:
            changed = await conn.execute(
                update(subscriptions)
                .where(subscriptions.c.user_id == user_id, subscriptions.c.event_id == event_id)
                .values(**values)
            )
            if not changed.rowcount:
                return False
            await _logged(conn, [event_id], now)
        return True

    async def snooze(self, user: User, event_id: str, until: float | None, now: float) -> bool:
        """Hold the user's messages about the event until `until`; a snooze ended or
        shortened lets what it held go at once (the dispatcher sends the latest state, once).
        False when the user does not follow the event."""
        async with self.engine.begin() as conn:
            changed = await conn.execute(
                update(subscriptions)
                .where(subscriptions.c.user_id == user.id, subscriptions.c.event_id == event_id)
                .values(snoozed_until=until)
            )
            if not changed.rowcount:
                return False
            held = select(changes.c.id).where(changes.c.event_id == event_id)
            await conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.notifier.startswith(notifier_name(user.name, ""), autoescape=True),
                    deliveries.c.state == DeliveryState.PENDING,
                    deliveries.c.next_attempt_at > (now if until is None else until),
                    deliveries.c.change_id.in_(held),
                )
                .values(next_attempt_at=now if until is None else until)
            )
        return True

    async def remove(self, user_id: str, event_id: str, now: float) -> bool:
        async with self.engine.begin() as conn:
            gone = await conn.execute(
                delete(subscriptions).where(
                    subscriptions.c.user_id == user_id, subscriptions.c.event_id == event_id
                )
            )
            if not gone.rowcount:
                return False
            await _logged(conn, [event_id], now)
        return True

    async def audience(self, event_ids: Sequence[str] | None = None) -> dict[str, list[Follower]]:
        """Who hears of each event (of `event_ids`, or every followed event): subscriptions
        neither paused nor of a disabled user, oldest first."""
        query = (
            select(
                subscriptions.c.event_id,
                subscriptions.c.user_id,
                subscriptions.c.settings,
                users.c.name,
                users.c.role,
            )
            .join(users, users.c.id == subscriptions.c.user_id)
            .where(subscriptions.c.paused.is_(False), users.c.disabled.is_(False))
            .order_by(subscriptions.c.added_at, users.c.name)
        )
        if event_ids is not None:
            query = query.where(subscriptions.c.event_id.in_(event_ids))
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
            owners = {row.user_id for row in rows}
            names = await _channel_names(conn, owners) if owners else {}
        found: dict[str, list[Follower]] = {}
        parsed: dict[str, dict[str, Any]] = {}
        for event_id, user_id, settings, name, role in rows:
            follower = Follower(
                name,
                Role(role),
                parsed.setdefault(settings, orjson.loads(settings)),
                names.get(user_id, ()),
            )
            found.setdefault(event_id, []).append(follower)
        return found

    async def paused_only(self, event_ids: Sequence[str]) -> set[str]:
        """Those of `event_ids` that users follow, every one of them paused."""
        if not event_ids:
            return set()
        query = (
            select(subscriptions.c.event_id)
            .where(subscriptions.c.event_id.in_(event_ids))
            .group_by(subscriptions.c.event_id)
            .having(func.min(case((subscriptions.c.paused, 1), else_=0)) == 1)
        )
        async with self._reader.connect() as conn:
            return set(await conn.scalars(query))

    async def searches(self, user_id: str | None = None) -> list[UserSearch]:
        """The searches of `user_id`, or of every enabled user, by user and name."""
        query = (
            select(user_searches, users.c.name.label("user"))
            .join(users, users.c.id == user_searches.c.user_id)
            .order_by(users.c.name, user_searches.c.name)
        )
        query = query.where(
            users.c.disabled.is_(False) if user_id is None else user_searches.c.user_id == user_id
        )
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            UserSearch(row.user_id, row.user, row.name, orjson.loads(row.filters), row.added_at)
            for row in rows
        ]

    async def add_search(self, search: UserSearch, limit: int | None) -> None:
        """Exists when the user has a search of that name; OverLimit past `limit`."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(user_searches).values(
                        user_id=search.user_id,
                        name=search.name,
                        filters=orjson.dumps(search.filters).decode(),
                        added_at=search.added_at,
                    )
                )
                if limit is not None:
                    count = await conn.scalar(
                        select(func.count()).where(user_searches.c.user_id == search.user_id)
                    )
                    if (count or 0) > limit:
                        raise OverLimit(limit)  # the insert is rolled back
        except IntegrityError:
            raise Exists(search.name) from None

    async def remove_search(self, user_id: str, name: str) -> bool:
        """What the search found stays, each until its event starts."""
        async with self.engine.begin() as conn:
            gone = await conn.execute(
                delete(user_searches).where(
                    user_searches.c.user_id == user_id, user_searches.c.name == name
                )
            )
        return bool(gone.rowcount)

    async def add_found(self, found: Sequence[Subscription]) -> list[str]:
        """Subscribe to what a user's search found and they do not follow yet; the event IDs
        newly followed."""
        if not found:
            return []
        user_id = found[0].user_id
        async with self.engine.begin() as conn:
            known = set(
                await conn.scalars(
                    select(subscriptions.c.event_id).where(
                        subscriptions.c.user_id == user_id,
                        subscriptions.c.event_id.in_([s.event_id for s in found]),
                    )
                )
            )
            new = [s for s in found if s.event_id not in known]
            if new:
                await conn.execute(insert(subscriptions), [_row(s) for s in new])
                await _logged(conn, [s.event_id for s in new], new[0].added_at)
        return [s.event_id for s in new]

    async def forget_started(self, before: float) -> int:
        """End what users' searches found and started before `before`; history stays."""
        started = subscriptions.c.search.is_not(None) & (subscriptions.c.until < before)
        async with self.engine.begin() as conn:
            gone = list(await conn.scalars(select(subscriptions.c.event_id).where(started)))
            if gone:
                await conn.execute(delete(subscriptions).where(started))
                await _logged(conn, sorted(set(gone)), before)
        return len(gone)


async def _channel_names(conn: AsyncConnection, user_ids: set[str]) -> dict[str, tuple[str, ...]]:
    query = (
        select(channels.c.user_id, channels.c.name)
        .where(channels.c.user_id.in_(user_ids))
        .order_by(channels.c.user_id, channels.c.name)
    )
    names: dict[str, list[str]] = {}
    for user_id, name in (await conn.execute(query)).all():
        names.setdefault(user_id, []).append(name)
    return {user_id: tuple(found) for user_id, found in names.items()}


async def _logged(conn: AsyncConnection, event_ids: Sequence[str], now: float) -> None:
    await conn.execute(_INSERT_LOG, [{"event_id": e, "at": now} for e in event_ids])


def _row(subscription: Subscription) -> dict[str, Any]:
    row = subscription._asdict()
    row["settings"] = orjson.dumps(subscription.settings).decode()
    return row


def _subscription(row: Any) -> Subscription:
    return Subscription(
        row.user_id,
        row.event_id,
        orjson.loads(row.settings),
        bool(row.paused),
        row.snoozed_until,
        row.added_at,
        row.search,
        row.until,
    )
