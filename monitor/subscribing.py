"""What one user follows and where they hear of it: their subscriptions and channels.

The one service behind `/api/me/...` and the member's dashboard. A user only ever reaches
their own things: another user's subscription or channel is "not found", so that asking
does not reveal it exists.

A subscription names an event as `events:` does (an ID or a link, a region) and says which
of the user's channels hear of it (`notify`, all by default), which statuses they want to
hear of (`when`, every change by default), whether resale, lifecycle and sale-opening news
come too, and how often it is polled at least (`interval`; a member's never under
`users.min_interval`). An event is polled once however many follow it. Each write reaches
this process's watchlist at once and the other replicas' within a tick.

A member's channel never targets a loopback, private, link-local or metadata address unless
`users.allow_private_targets` says so: checked when it is added, and again when each
delivery resolves the host (see `netguard`).
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, Strict, TypeAdapter, ValidationError

from monitor.config import (
    AppriseNotifierConfig,
    Config,
    EventConfig,
    WebhookNotifierConfig,
)
from monitor.discovery.details import Attraction
from monitor.discovery_jobs.discoverer import personal_search
from monitor.errors import Conflict, DeliveryError, Invalid, NotFound
from monitor.following import SearchFilters, SearchName, looked_up
from monitor.inputs import (
    ChannelInput,
    SubscriptionInput,
    SubscriptionSettings,
    not_null,
    problem_of,
    shaped,
    snooze_end,
    whole_number,
)
from monitor.netguard import resolved_problem, url_host
from monitor.notify.audience import NEWS
from monitor.notify.channels import channel_route
from monitor.notify.documents import test_delivery
from monitor.redact import redact
from monitor.store.accounts import (
    Accounts,
    Channel,
    Exists,
    OverLimit,
    Role,
    User,
    notifier_name,
)
from monitor.store.reads import Reads, Troubled
from monitor.store.rows import EventRow
from monitor.store.subscriptions import Subscription, Subscriptions, UserSearch
from monitor.times import in_seconds, iso, parse_duration

logger = logging.getLogger(__name__)

_EVENT = TypeAdapter(EventConfig)


class SearchInput(SearchFilters):
    """A search of your own: what it finds, you follow, each show until it starts."""

    name: SearchName
    max_events: (
        Annotated[int, Strict(), Field(ge=1, le=100), BeforeValidator(whole_number)] | None
    ) = None


_SETTINGS = frozenset(SubscriptionSettings.model_fields)
_EVENT_FIELDS = ("id", "url", "region")


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    subscription: Subscription
    row: EventRow | None
    """The event as it stands; None before it was first watched."""

    def document(self) -> dict[str, Any]:
        settings = self.subscription.settings
        interval = settings.get("interval")
        snoozed = self.subscription.snoozed_until
        row, current = self.row, None if self.row is None else self.row.current
        return {
            "id": self.subscription.event_id,
            "url": settings.get("url"),
            "region": settings.get("region"),
            "name": None if row is None else row.name or row.info.name,
            "status": None if current is None else current.status.value,
            "resale_status": None if current is None else current.resale_status.value,
            "notify": settings.get("notify"),
            "when": settings.get("when"),
            "interval": None if interval is None else in_seconds(interval),
            **{news: settings.get(news, True) for news in NEWS},
            "paused": self.subscription.paused,
            "snoozed_until": None if snoozed is None else iso(snoozed),
        }


class Subscribing:
    def __init__(
        self,
        accounts: Accounts,
        subscriptions: Subscriptions,
        config: Callable[[], Config],
        clock: Callable[[], float],
        *,
        standing: Callable[[Sequence[str]], Awaitable[Mapping[str, EventRow]]] | None = None,
        changed: Callable[[Sequence[str]], Awaitable[None]] | None = None,
        channels_changed: Callable[[], Awaitable[None]] | None = None,
        released: Callable[[], None] | None = None,
        reads: Reads | None = None,
        artists: Callable[[str], Awaitable[Sequence[Attraction]]] | None = None,
    ) -> None:
        self._accounts = accounts
        self._reads = reads
        self._artists = artists
        """Discovery's attraction search: an artist's name to their ID."""
        self._subscriptions = subscriptions
        self._config = config
        self._clock = clock
        self._standing = standing
        """Each event's name and statuses as they stand, for the documents."""
        self._changed = changed
        """Applies a write to this process's watchlist at once (see `Watching`)."""
        self._channels_changed = channels_changed
        """Rebuilds this process's routes for the users' channels at once."""
        self._released = released
        """Wakes this process's dispatcher: a snooze ended lets what it held go now."""

    # Subscriptions

    async def subscriptions(self, user: User) -> list[SubscriptionView]:
        return await self._views(await self._subscriptions.of_user(user.id))

    async def subscription(self, user: User, event_id: str) -> SubscriptionView:
        found = await self._subscriptions.get(user.id, event_id)
        if found is None:
            raise NotFound(f"you do not follow {event_id!r}")
        return (await self._views([found]))[0]

    async def subscribe(self, user: User, body: Mapping[str, Any]) -> SubscriptionView:
        """Follow the event given by `id` or `url`; 409 when the user follows it already."""
        not_null(body, "id", "url")
        shaped(SubscriptionInput, body)
        if ("id" in body) == ("url" in body):
            raise Invalid("give the event as `id` or as `url`", field="id")
        if body.get("url") is not None and body.get("region") is not None:
            raise Invalid("give a link or a region: the link says its region", field="region")
        event = self._event(body)
        settings = await self._settings(user, body, {})
        settings.update(
            {"url": event.url} if event.url else {"id": event.id, "region": event.region}
        )
        now = self._clock()
        limit = self._config().users.max_subscriptions if user.role is Role.MEMBER else None
        subscription = Subscription(user.id, event.id, _set(settings), False, None, now)
        try:
            await self._subscriptions.add(subscription, limit)
        except Exists:
            raise Conflict(f"you follow {event.id} already", field="id") from None
        except OverLimit:
            raise Conflict(
                f"you follow as many events as a member may ({limit}, users.max_subscriptions)",
            ) from None
        await self._written([event.id])
        logger.info("%s: follows %s", user.name, event.id)
        return await self.subscription(user, event.id)

    async def update(self, user: User, event_id: str, body: Mapping[str, Any]) -> SubscriptionView:
        """Change a subscription's settings: those given replace the stored ones, and a null
        removes one."""
        current = await self.subscription(user, event_id)
        for field in _EVENT_FIELDS:
            if field in body:
                raise Invalid("a subscription's event cannot change", field=field)
        shaped(SubscriptionSettings, body)
        settings = await self._settings(user, body, current.subscription.settings)
        await self._subscriptions.change(user.id, event_id, self._clock(), settings=_set(settings))
        await self._written([event_id])
        return await self.subscription(user, event_id)

    async def unsubscribe(self, user: User, event_id: str) -> None:
        if not await self._subscriptions.remove(user.id, event_id, self._clock()):
            raise NotFound(f"you do not follow {event_id!r}")
        await self._written([event_id])
        logger.info("%s: no longer follows %s (its history stays)", user.name, event_id)

    async def pause(self, user: User, event_id: str, *, paused: bool = True) -> SubscriptionView:
        """Pause this user's subscription alone: the event is polled while anyone else
        watches it."""
        await self.subscription(user, event_id)
        await self._subscriptions.change(user.id, event_id, self._clock(), paused=paused)
        await self._written([event_id])
        return await self.subscription(user, event_id)

    async def snooze(self, user: User, event_id: str, body: Mapping[str, Any]) -> SubscriptionView:
        """Hold this user's messages about the event `{"for": "2h"}` or `{"until": ISO}`;
        `{"for": "0s"}` ends the snooze. Nobody else's are held."""
        await self.subscription(user, event_id)
        now = self._clock()
        until: float | None = snooze_end(body, now)
        if until is not None and until <= now:
            until = None
        await self._subscriptions.snooze(user, event_id, until, now)
        if self._released is not None:
            self._released()
        return await self.subscription(user, event_id)

    # Channels

    async def channels(self, user: User) -> list[Channel]:
        return await self._accounts.channels(user.id)

    async def add_channel(self, user: User, body: Mapping[str, Any]) -> Channel:
        """A new channel; a webhook's signing secret is made here, and shown once."""
        shaped(ChannelInput, body)
        given = ChannelInput.model_validate(body)
        if given.type == "webhook":
            url = _checked(lambda: WebhookNotifierConfig(type="webhook", url=given.url).url, "url")
            host = urlsplit(url).hostname
            secret: str | None = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        else:
            url = _checked(
                lambda: AppriseNotifierConfig(type="apprise", urls=(given.url,)).urls[0], "url"
            )
            host = url_host(url)
            secret = None
        config = self._config()
        if user.role is Role.MEMBER and not config.users.allow_private_targets and host:
            problem = await resolved_problem(host)
            if problem is not None:
                raise Invalid(
                    f"{problem}: a member's channel may not reach it "
                    "(users.allow_private_targets lifts this on a home network)",
                    field="url",
                )
        channel = Channel(user.id, given.name, given.type, url, secret, self._clock())
        limit = config.users.max_channels if user.role is Role.MEMBER else None
        try:
            await self._accounts.add_channel(channel, limit)
        except Exists:
            raise Conflict(
                f"you have a channel named {given.name!r} already", field="name"
            ) from None
        except OverLimit:
            raise Conflict(
                f"you have as many channels as a member may ({limit}, users.max_channels)",
            ) from None
        await self._channels_written(user)
        logger.info("%s: channel %s added", user.name, given.name)
        return channel

    async def remove_channel(self, user: User, name: str) -> None:
        if not await self._accounts.remove_channel(user, name, self._clock()):
            raise NotFound(f"you have no channel named {name!r}")
        await self._channels_written(user)
        logger.info("%s: channel %s removed", user.name, name)

    async def test_channel(self, user: User, name: str) -> tuple[bool, str]:
        """Send a message marked as a test through one channel, outside the outbox: whether
        it got through, and the receiver's answer or why not."""
        channel = next((c for c in await self.channels(user) if c.name == name), None)
        if channel is None:
            raise NotFound(f"you have no channel named {name!r}")
        guarded = user.role is Role.MEMBER and not self._config().users.allow_private_targets
        route = channel_route(user, channel, guarded=guarded)
        try:
            return True, await route.notifier.send(
                test_delivery(route.notifier.name, self._clock())
            )
        except DeliveryError as exc:
            return False, redact(str(exc))
        finally:
            await route.notifier.aclose()

    # Searches

    async def searches(self, user: User) -> list[UserSearch]:
        return await self._subscriptions.searches(user.id)

    async def add_search(self, user: User, body: Mapping[str, Any]) -> UserSearch:
        """A search of the user's own; an `artist` is looked up for its Discovery ID."""
        given = await looked_up(SearchInput, body, self._artists, self._config())
        name = given.pop("name")
        search = UserSearch(user.id, user.name, name, given, self._clock())
        try:
            personal_search(search)
        except ValidationError as exc:
            raise problem_of(exc) from None
        limit = self._config().users.max_searches if user.role is Role.MEMBER else None
        try:
            await self._subscriptions.add_search(search, limit)
        except Exists:
            raise Conflict(f"you have a search named {name!r} already", field="name") from None
        except OverLimit:
            raise Conflict(
                f"you have as many searches as a member may ({limit}, users.max_searches)",
            ) from None
        logger.info("%s: search %s added", user.name, name)
        return search

    async def remove_search(self, user: User, name: str) -> None:
        if not await self._subscriptions.remove_search(user.id, name):
            raise NotFound(f"you have no search named {name!r}")
        logger.info("%s: search %s removed (what it found stays)", user.name, name)

    async def troubled(self, user: User, limit: int = 20) -> list[Troubled]:
        """The user's deliveries that failed: dead ones, and those being retried."""
        if self._reads is None:
            return []
        return await self._reads.troubled_deliveries(
            limit, notifiers_from=notifier_name(user.name, "")
        )

    async def _settings(
        self, user: User, body: Mapping[str, Any], current: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The subscription's settings after `body`, checked: the channels are the user's
        own, and a member's interval is not under the floor."""
        shaped(SubscriptionSettings, {k: v for k, v in body.items() if k in _SETTINGS})
        settings = {**current, **{k: v for k, v in body.items() if k in _SETTINGS}}
        if isinstance(settings.get("interval"), str):
            settings["interval"] = parse_duration(settings["interval"])
        floor = self._config().users.min_interval
        interval = settings.get("interval")
        if user.role is Role.MEMBER and interval is not None and interval < floor:
            raise Invalid(
                f"a member's interval is at least {floor:g}s (users.min_interval)",
                field="interval",
            )
        notify = settings.get("notify")
        if notify is not None:
            await self._own_channels(user, notify)
        return settings

    async def _own_channels(self, user: User, names: Sequence[str]) -> None:
        """A conflict unless all `names` are the user's: the form is right, the channel not."""
        own = {channel.name for channel in await self.channels(user)}
        for name in names:
            if name not in own:
                known = ", ".join(sorted(own)) or "none yet"
                raise Conflict(
                    f"you have no channel named {name!r} (yours: {known})", field="notify"
                )

    def _event(self, body: Mapping[str, Any]) -> EventConfig:
        given = {key: body[key] for key in _EVENT_FIELDS if body.get(key) is not None}
        try:
            return _EVENT.validate_python(given)
        except ValidationError as exc:
            raise problem_of(exc) from None

    async def _views(self, found: Sequence[Subscription]) -> list[SubscriptionView]:
        standing = (
            {} if self._standing is None else await self._standing([s.event_id for s in found])
        )
        return [SubscriptionView(s, standing.get(s.event_id)) for s in found]

    async def _written(self, event_ids: Sequence[str]) -> None:
        if self._changed is not None:
            await self._changed(event_ids)

    async def _channels_written(self, user: User) -> None:
        """The user's routes now, and every event they follow looked at again: a
        subscription without `notify` hears on every channel they have."""
        if self._channels_changed is not None:
            await self._channels_changed()
        followed = [s.event_id for s in await self._subscriptions.of_user(user.id)]
        if followed:
            await self._written(followed)


def _set(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in settings.items() if value is not None}


def _checked(make: Callable[[], str], field: str) -> str:
    """A value as the config file would take it, or a 400 that says why not."""
    try:
        return make()
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise Invalid(message, field=field) from None
