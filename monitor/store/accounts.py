"""Users, their API tokens and their channels.

A token is stored as its SHA-256 digest: tokens are long random strings, so the digest is
enough to find the user and useless to anyone who reads the database. Passwords are
hashed by the caller (argon2id). Every write to a user, their settings or their channels
moves the user's `changed_at`, which is how other replicas know to rebuild that user's
delivery routes; a write that changes what a user hears of (disabling them, removing
them) is also logged for each event they follow, as watches are (`watch_changes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Float, delete, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.models import DeliveryState
from monitor.store.engine import reader
from monitor.store.tables import (
    channels,
    deliveries,
    sessions,
    subscriptions,
    user_searches,
    user_tokens,
    users,
    watch_changes,
)


class Role(StrEnum):
    ADMIN = "admin"
    """Everything the operator's token may do, and the users' management."""
    MEMBER = "member"
    """Their own subscriptions, channels, searches and settings, and nothing else."""


class User(NamedTuple):
    id: str
    name: str
    role: Role
    disabled: bool
    settings: dict[str, Any]
    """`timezone` and `quiet_hours` ({from, to}), as the user set them."""
    created_at: float
    changed_at: float = 0.0
    """When the user, their settings or channels were last written to."""


class Channel(NamedTuple):
    user_id: str
    name: str
    kind: str
    """`apprise` or `webhook`."""
    url: str
    secret: str | None
    """A webhook's signing secret (whsec_...)."""
    created_at: float


class Exists(Exception):
    """A user or channel of that name exists already."""


class OverLimit(Exception):
    """The user has as many channels as they may."""


def notifier_name(user: str, channel: str) -> str:
    """How a user's channel is named in the outbox and the logs: `@alice/phone`."""
    return f"@{user}/{channel}"


def owner_of(notifier: str) -> str | None:
    """The user whose channel `notifier` is; None for a notifier of the config file."""
    if not notifier.startswith("@"):
        return None
    return notifier[1:].partition("/")[0]


class Accounts:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)

    async def add_user(
        self,
        user: User,
        password_hash: str | None,
        token_digest: str,
    ) -> None:
        """Create `user` with its first token; Exists when the name is taken."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert(users).values(
                        id=user.id,
                        name=user.name,
                        role=user.role.value,
                        password_hash=password_hash,
                        settings=orjson.dumps(user.settings).decode(),
                        disabled=user.disabled,
                        created_at=user.created_at,
                        changed_at=user.created_at,
                    )
                )
                await conn.execute(
                    insert(user_tokens).values(
                        digest=token_digest, user_id=user.id, created_at=user.created_at
                    )
                )
                await _logged(conn, user.id, user.created_at)
        except IntegrityError:
            raise Exists(user.name) from None

    async def users(self) -> list[User]:
        async with self._reader.connect() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.name))).all()
        return [_user(row) for row in rows]

    async def user(self, name: str) -> User | None:
        async with self._reader.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.name == name))).first()
        return None if row is None else _user(row)

    async def by_token(self, digest: str) -> User | None:
        """The user holding the token with this digest, disabled or not."""
        query = select(users).join(user_tokens, user_tokens.c.user_id == users.c.id)
        async with self._reader.connect() as conn:
            row = (await conn.execute(query.where(user_tokens.c.digest == digest))).first()
        return None if row is None else _user(row)

    async def password_hash(self, name: str) -> tuple[User, str | None] | None:
        async with self._reader.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.name == name))).first()
        return None if row is None else (_user(row), row.password_hash)

    async def set_password(self, user_id: str, password_hash: str, now: float) -> None:
        """A new password; every dashboard session of the user ends."""
        async with self.engine.begin() as conn:
            await _touch(conn, user_id, now, password_hash=password_hash)
            await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))

    async def add_session(self, digest: str, user_id: str, now: float, expires_at: float) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(sessions).values(
                    digest=digest, user_id=user_id, created_at=now, expires_at=expires_at
                )
            )

    async def by_session(self, digest: str, now: float) -> User | None:
        """The user of a session that has not expired, disabled or not."""
        query = (
            select(users)
            .join(sessions, sessions.c.user_id == users.c.id)
            .where(sessions.c.digest == digest, sessions.c.expires_at > now)
        )
        async with self._reader.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _user(row)

    async def end_session(self, digest: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.digest == digest))

    async def prune_sessions(self, now: float) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.expires_at <= now))

    async def set_calendar_key(self, user_id: str, digest: str, now: float) -> None:
        """A new key for the user's calendar feed; the earlier one stops working."""
        async with self.engine.begin() as conn:
            await _touch(conn, user_id, now, calendar_digest=digest)

    async def by_calendar_key(self, digest: str) -> User | None:
        async with self._reader.connect() as conn:
            row = (
                await conn.execute(select(users).where(users.c.calendar_digest == digest))
            ).first()
        return None if row is None else _user(row)

    async def replace_tokens(self, user_id: str, digest: str, now: float) -> None:
        """One new token; every earlier one stops working at once."""
        async with self.engine.begin() as conn:
            await conn.execute(delete(user_tokens).where(user_tokens.c.user_id == user_id))
            await conn.execute(
                insert(user_tokens).values(digest=digest, user_id=user_id, created_at=now)
            )
            await _touch(conn, user_id, now)

    async def set_disabled(self, user_id: str, disabled: bool, now: float) -> None:
        """A disabled user cannot sign in, and hears of nothing; their things stay."""
        async with self.engine.begin() as conn:
            await _touch(conn, user_id, now, disabled=disabled)
            await _log_followed(conn, user_id, now)

    async def set_settings(self, user_id: str, settings: dict[str, Any], now: float) -> None:
        async with self.engine.begin() as conn:
            await _touch(conn, user_id, now, settings=orjson.dumps(settings).decode())

    async def remove_user(self, user: User, now: float) -> None:
        """The user, their tokens, channels and subscriptions go; the events' history stays,
        and deliveries still waiting for their channels are superseded."""
        async with self.engine.begin() as conn:
            await _log_followed(conn, user.id, now)
            await conn.execute(delete(subscriptions).where(subscriptions.c.user_id == user.id))
            await conn.execute(delete(channels).where(channels.c.user_id == user.id))
            await conn.execute(delete(user_tokens).where(user_tokens.c.user_id == user.id))
            await conn.execute(delete(sessions).where(sessions.c.user_id == user.id))
            await conn.execute(delete(user_searches).where(user_searches.c.user_id == user.id))
            await conn.execute(delete(users).where(users.c.id == user.id))
            await _logged(conn, user.id, now)
            await _supersede(conn, [notifier_name(user.name, "")], now, prefix=True)

    async def channels(self, user_id: str) -> list[Channel]:
        return (await self.channels_of([user_id])).get(user_id, [])

    async def channels_of(self, user_ids: Sequence[str]) -> dict[str, list[Channel]]:
        """The channels of each of `user_ids` that has any, in name order."""
        query = (
            select(channels)
            .where(channels.c.user_id.in_(user_ids))
            .order_by(channels.c.user_id, channels.c.name)
        )
        found: dict[str, list[Channel]] = {}
        async with self._reader.connect() as conn:
            for row in (await conn.execute(query)).all():
                found.setdefault(row.user_id, []).append(_channel(row))
        return found

    async def add_channel(self, channel: Channel, limit: int | None) -> None:
        """Exists when the user has a channel of that name; OverLimit past `limit`."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(channels).values(**channel._asdict()))
                if limit is not None:
                    count = await conn.scalar(
                        select(func.count()).where(channels.c.user_id == channel.user_id)
                    )
                    if (count or 0) > limit:
                        raise OverLimit(limit)  # the insert is rolled back
                await _touch(conn, channel.user_id, channel.created_at)
                await _log_followed(conn, channel.user_id, channel.created_at)
        except IntegrityError:
            raise Exists(channel.name) from None

    async def remove_channel(self, user: User, name: str, now: float) -> bool:
        async with self.engine.begin() as conn:
            gone = await conn.execute(
                delete(channels).where(channels.c.user_id == user.id, channels.c.name == name)
            )
            if not gone.rowcount:
                return False
            await _touch(conn, user.id, now)
            await _log_followed(conn, user.id, now)
            await _supersede(conn, [notifier_name(user.name, name)], now)
        return True


async def _touch(conn: AsyncConnection, user_id: str, now: float, **values: Any) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(changed_at=now, **values))
    await _logged(conn, user_id, now)


async def _logged(conn: AsyncConnection, user_id: str, now: float) -> None:
    """The watch log names the user too (`@` and their ID): every replica following it
    rebuilds the routes of their channels, with no look of its own at the users."""
    await conn.execute(insert(watch_changes).values(event_id=log_entry(user_id), at=now))


def log_entry(user_id: str) -> str:
    return f"@{user_id}"


def is_user_entry(entry: str) -> bool:
    """Whether a watch log entry names a user rather than an event."""
    return entry.startswith("@")


async def _log_followed(conn: AsyncConnection, user_id: str, now: float) -> None:
    """Every event the user follows is looked at again: who polls it, and for whom."""
    followed = select(subscriptions.c.event_id).where(subscriptions.c.user_id == user_id)
    await conn.execute(
        insert(watch_changes).from_select(
            ["event_id", "at"], select(followed.subquery().c.event_id, literal(now, Float))
        )
    )


async def _supersede(
    conn: AsyncConnection, notifiers: Sequence[str], now: float, *, prefix: bool = False
) -> None:
    """Deliveries waiting for a channel that is gone will never be sent."""
    for name in notifiers:
        match = (
            deliveries.c.notifier.startswith(name, autoescape=True)
            if prefix
            else deliveries.c.notifier == name
        )
        await conn.execute(
            update(deliveries)
            .where(match, deliveries.c.state == DeliveryState.PENDING)
            .values(state=DeliveryState.SUPERSEDED, finished_at=now)
        )


def _user(row: Any) -> User:
    return User(
        row.id,
        row.name,
        Role(row.role),
        bool(row.disabled),
        orjson.loads(row.settings),
        row.created_at,
        row.changed_at,
    )


def _channel(row: Any) -> Channel:
    return Channel(row.user_id, row.name, row.kind, row.url, row.secret, row.created_at)
