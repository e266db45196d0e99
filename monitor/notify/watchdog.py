"""The watchdog: the watcher says when it is broken, and proves it is alive.

- No successful poll for `alerts.stalled_after` (default 3x the shortest interval): one
  "not working" notice through the notifiers in `alerts.notify`, and one "recovered" notice
  when polls succeed again. Never one per check.
- `alerts.heartbeat_url` is pinged after successful polls, at most once a minute, so a
  dead man's switch (Healthchecks and the like) raises the alarm when even this process is
  gone.
- `alerts.daily_summary` ("08:00", UTC) sends one summary a day through the same notifiers.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

import aiohttp

from monitor import USER_AGENT
from monitor.config import Config
from monitor.errors import DeliveryError
from monitor.models import Health, Notice, NoticeKind
from monitor.notify.notifiers.base import Notifier
from monitor.readiness import stall_limit
from monitor.redact import redact
from monitor.store.reads import Reads
from monitor.times import format_duration, iso
from monitor.upstream.health import Upstream

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY = 60.0
NOTICE_ATTEMPTS = 5
"""A notice a notifier could not take is tried again at the next checks, this often."""


class Watchdog:
    def __init__(
        self,
        *,
        config: Callable[[], Config],
        notifiers: Callable[[], Mapping[str, Notifier]],
        upstream: Upstream,
        reads: Reads,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._notifiers = notifiers
        self._upstream = upstream
        self._reads = reads
        self._clock = clock
        self._started_at = clock()
        self.stalled = False
        self._unsent: list[tuple[str, Notice, int]] = []
        self._pinged_at = 0.0
        self._pinged_success: float | None = None
        self._summary_day = self._today_if_past_summary(self._started_at)
        self._session: aiohttp.ClientSession | None = None

    async def check(self) -> None:
        now = self._clock()
        config = self._config()
        await self._retry_unsent()
        if config.events:
            await self._check_stall(config, now)
            await self._heartbeat(config, now)
        await self._summary(config, now)

    async def __aenter__(self) -> Watchdog:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _check_stall(self, config: Config, now: float) -> None:
        shortest = await self._reads.shortest_interval()
        limit = config.alerts.stalled_after or stall_limit(shortest or config.shortest_interval())
        status = self._upstream.status
        last = status.last_success_at
        reference = max(last or 0.0, self._started_at)
        if not self.stalled and now - reference > limit:
            self.stalled = True
            since = "never since the start" if last is None else f"last at {iso(last)}"
            problem = "polls are not running" if status.health is Health.OK else status.health.words
            lines = [
                f"No poll has succeeded for over {format_duration(limit)} ({since}): {problem}.",
                "Until polls succeed again, ticket changes go unnoticed.",
            ]
            if status.last_error:
                lines.append(f"Last error: {redact(status.last_error)}")
            logger.error("the watcher is not working: %s", problem)
            await self._send(config, NoticeKind.STALLED, "inventory-monitor is not working", lines)
        elif self.stalled and last is not None and now - last <= limit:
            self.stalled = False
            logger.info("the watcher works again")
            await self._send(
                config,
                NoticeKind.RECOVERED,
                "inventory-monitor works again",
                [f"Polls succeed again (last at {iso(last)})."],
            )

    async def _heartbeat(self, config: Config, now: float) -> None:
        url = config.alerts.heartbeat_url
        last = self._upstream.status.last_success_at
        if url is None or last is None or last == self._pinged_success:
            return
        if now - self._pinged_at < HEARTBEAT_EVERY:
            return
        self._pinged_at, self._pinged_success = now, last
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT})
        try:
            async with self._session.post(
                url, data=b"ok", timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                if response.status >= 400:
                    logger.warning("the heartbeat URL answered HTTP %d", response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.warning("could not ping the heartbeat URL: %s", redact(str(exc)) or "timeout")

    async def _summary(self, config: Config, now: float) -> None:
        at = config.alerts.daily_summary
        if at is None:
            return
        day = datetime.fromtimestamp(now, UTC).date()
        if day == self._summary_day or now < _summary_time(day, at):
            return
        self._summary_day = day
        watched = await self._reads.watched_count()
        recent = await self._reads.changes_of(limit=10_000, since=now - 86400)
        status = self._upstream.status
        lines = [
            f"Watching {watched:,} events; {len(recent):,} changes in the last 24 hours.",
            f"Upstream: {status.health.value}; last successful poll "
            f"{'never' if status.last_success_at is None else iso(status.last_success_at)}.",
        ]
        if status.quota.available is not None:
            lines.append(f"Quota left: {status.quota.available:,}.")
        lines.extend(
            f"{iso(c.observed_at)}  {c.event_name or c.event_id}: "
            f"{c.previous.status if c.previous else '-'} → {c.current.status}"
            for c in recent[-20:]
        )
        await self._send(config, NoticeKind.SUMMARY, "inventory-monitor daily summary", lines)

    def _today_if_past_summary(self, now: float) -> date | None:
        """A summary time already past at start-up waits for tomorrow."""
        at = self._config().alerts.daily_summary
        day = datetime.fromtimestamp(now, UTC).date()
        return day if at is not None and now >= _summary_time(day, at) else None

    async def _send(self, config: Config, kind: NoticeKind, subject: str, lines: list[str]) -> None:
        await self.notify(config.alerts.notify, kind, subject, lines)

    async def notify(
        self, names: Sequence[str], kind: NoticeKind, subject: str, lines: list[str]
    ) -> None:
        """A notice through the notifiers `names`, tried again a few times if it fails."""
        notice = Notice(uuid.uuid4().hex, kind, subject, "\n".join(lines), self._clock())
        for name in names:
            await self._deliver(name, notice, 1)

    async def _retry_unsent(self) -> None:
        unsent, self._unsent = self._unsent, []
        for name, notice, attempt in unsent:
            await self._deliver(name, notice, attempt + 1)

    async def _deliver(self, name: str, notice: Notice, attempt: int) -> None:
        notifier = self._notifiers().get(name)
        if notifier is None:
            return
        try:
            await notifier.send_notice(notice)
        except DeliveryError as exc:
            if attempt < NOTICE_ATTEMPTS:
                self._unsent.append((name, notice, attempt))
            logger.warning(
                "could not send the %s notice through %s (attempt %d of %d): %s",
                notice.kind,
                name,
                attempt,
                NOTICE_ATTEMPTS,
                exc,
                extra={"notifier": name},
            )


def _summary_time(day: date, at: str) -> float:
    hours, minutes = (int(part) for part in at.split(":"))
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return (midnight + timedelta(hours=hours, minutes=minutes)).timestamp()
