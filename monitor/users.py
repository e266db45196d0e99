"""The people who share the watcher: users, their roles, passwords, tokens and settings.

The one service the CLI (`user ...`), the JSON API (`/api/users`, `/api/me`) and the
dashboard's sign-in use. A password is hashed with argon2id; a token is a long random
string shown once, stored as its SHA-256 digest, and `user token` replaces every earlier
one. Hashing and checking a password take tens of milliseconds of CPU and 64 MB, so they
run in a thread: polling never waits for them.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NamedTuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import ValidationError

from monitor.config.notifiers import QuietHoursConfig
from monitor.errors import Conflict, Invalid, NotFound
from monitor.models import new_id
from monitor.store.accounts import Accounts, Exists, Role, User
from monitor.store.subscriptions import Subscriptions

logger = logging.getLogger(__name__)

USER_NAME = r"^[a-z0-9][a-z0-9_.-]{0,31}$"
"""Lower case, as a person types it when signing in; at most 32 characters."""
TOKEN_PREFIX = "imu_"  # noqa: S105 (a prefix, not a secret)
"""User tokens start so: a scanner that finds one in a paste knows what it is."""
_HASHER = PasswordHasher()
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


class Principal(NamedTuple):
    """Who a request or a command acts as: a user, or the operator's own token."""

    name: str
    role: Role
    user: User | None = None
    """None for the operator's token (`server.token`), which has no account of its own."""

    @property
    def admin(self) -> bool:
        return self.role is Role.ADMIN


OPERATOR = Principal("api", Role.ADMIN)
"""The config's `server.token`: an admin, named `api` in the audit as before users."""


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


async def password_matches(stored: str | None, password: str) -> bool:
    if stored is None:
        return False
    try:
        return await asyncio.to_thread(_HASHER.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return False


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Invalid(
            f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            field="password",
        )


def check_name(name: str) -> None:
    if not re.fullmatch(USER_NAME, name):
        raise Invalid(
            "a user name has 1 to 32 characters: lower-case letters, digits, '_', '.', '-'",
            field="name",
        )


def settings_of(body: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """A user's settings after `body` ({timezone, quiet_hours}; null clears one)."""
    unknown = sorted(set(body) - {"timezone", "quiet_hours"})
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r}", field=unknown[0])
    settings = {**current, **body}
    settings = {key: value for key, value in settings.items() if value is not None}
    zone = settings.get("timezone", "UTC")
    hours = settings.get("quiet_hours")
    if not isinstance(zone, str):
        raise Invalid("expected a time zone such as Europe/London", field="timezone")
    if hours is not None and not isinstance(hours, dict):
        raise Invalid('expected {"from": "23:00", "to": "07:00"}', field="quiet_hours")
    try:
        QuietHoursConfig.model_validate(
            {**(hours or {"from": "00:00", "to": "00:00"}), "timezone": zone}
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = [str(part) for part in error["loc"]]
        field = "timezone" if where == ["timezone"] else ".".join(["quiet_hours", *where])
        raise Invalid(str(error["msg"]).removeprefix("Value error, "), field=field) from None
    return settings


class Users:
    def __init__(
        self,
        accounts: Accounts,
        subscriptions: Subscriptions,
        clock: Callable[[], float],
        *,
        changed: Callable[[Sequence[str]], Awaitable[None]] | None = None,
        channels_changed: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._accounts = accounts
        self._subscriptions = subscriptions
        self._clock = clock
        self._changed = changed
        """Applies a write to this process's watchlist at once (see `Watching`)."""
        self._channels_changed = channels_changed
        """Rebuilds this process's routes for the users' channels at once."""

    async def _written(self, user: User, followed: Sequence[str] | None = None) -> None:
        """What a write to `user` changes in this process: their routes, and who hears of
        (and so who polls) each event they follow."""
        if self._channels_changed is not None:
            await self._channels_changed()
        if followed is None:
            followed = [s.event_id for s in await self._subscriptions.of_user(user.id)]
        if followed and self._changed is not None:
            await self._changed(followed)

    async def add(self, name: str, role: Role, password: str | None) -> tuple[User, str]:
        """A new user and their first token; 409 when the name is taken."""
        check_name(name)
        if password is not None:
            check_password(password)
        hashed = None if password is None else await hash_password(password)
        now = self._clock()
        user = User(new_id(), name, role, False, {}, now, now)
        token = new_token()
        try:
            await self._accounts.add_user(user, hashed, digest(token))
        except Exists:
            raise Conflict(f"a user named {name!r} exists already", field="name") from None
        if self._channels_changed is not None:
            await self._channels_changed()
        logger.info("user %s added (%s)", name, role.value)
        return user, token

    async def list(self) -> Sequence[User]:
        return await self._accounts.users()

    async def get(self, name: str) -> User:
        user = await self._accounts.user(name)
        if user is None:
            raise NotFound(f"no user is named {name!r}", field="name")
        return user

    async def new_token(self, name: str) -> str:
        """A new token for `name`; every earlier one stops working."""
        user = await self.get(name)
        token = new_token()
        await self._accounts.replace_tokens(user.id, digest(token), self._clock())
        logger.info("user %s has a new token; the earlier ones are revoked", name)
        return token

    async def set_password(self, name: str, password: str) -> None:
        check_password(password)
        user = await self.get(name)
        await self._accounts.set_password(user.id, await hash_password(password), self._clock())
        logger.info("user %s has a new password", name)

    async def set_disabled(self, name: str, disabled: bool) -> User:
        user = await self.get(name)
        await self._accounts.set_disabled(user.id, disabled, self._clock())
        await self._written(user)
        logger.info("user %s %s", name, "disabled" if disabled else "enabled")
        return await self.get(name)

    async def remove(self, name: str) -> None:
        user = await self.get(name)
        followed = [s.event_id for s in await self._subscriptions.of_user(user.id)]
        await self._accounts.remove_user(user, self._clock())
        await self._written(user, followed)
        logger.info("user %s removed with their subscriptions and channels", name)

    async def authenticate(self, token: str) -> User | None:
        """The user holding `token`, if it is a live token of an enabled user."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        user = await self._accounts.by_token(digest(token))
        return None if user is None or user.disabled else user

    async def sign_in(self, name: str, password: str) -> User | None:
        """The user, if the password is theirs and they are enabled."""
        found = await self._accounts.password_hash(name)
        if found is None:
            # As long as a real check takes: the answer's time does not say who exists.
            await password_matches(await _decoy(), password)
            return None
        user, stored = found
        if not await password_matches(stored, password) or user.disabled:
            return None
        return user

    async def start_session(self, user: User, lasts: float) -> str:
        """A new dashboard session for `user`: the value for their cookie."""
        session = secrets.token_urlsafe(32)
        now = self._clock()
        await self._accounts.add_session(digest(session), user.id, now, now + lasts)
        return session

    async def session_user(self, session: str) -> User | None:
        """The enabled user whose live session this is."""
        user = await self._accounts.by_session(digest(session), self._clock())
        return None if user is None or user.disabled else user

    async def end_session(self, session: str) -> None:
        await self._accounts.end_session(digest(session))

    async def new_calendar_key(self, user: User) -> str:
        """A new key for the user's calendar feed; the earlier one stops working."""
        key = secrets.token_urlsafe(24)
        await self._accounts.set_calendar_key(user.id, digest(key), self._clock())
        return key

    async def calendar_user(self, key: str) -> User | None:
        user = await self._accounts.by_calendar_key(digest(key))
        return None if user is None or user.disabled else user

    async def update_settings(self, user: User, body: Mapping[str, Any]) -> User:
        settings = settings_of(body, user.settings)
        await self._accounts.set_settings(user.id, settings, self._clock())
        if self._channels_changed is not None:
            await self._channels_changed()  # quiet hours are the routes'
        return await self.get(user.name)


@functools.cache
def _decoy_hash() -> str:
    return _HASHER.hash("a password nobody has")


async def _decoy() -> str:
    return await asyncio.to_thread(_decoy_hash)
