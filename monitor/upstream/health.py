"""How the Inventory Status API is doing, learned from every answer, and whether a request
may go out now.

One tracker per API key sees every request: it keeps the quota that the `Rate-Limit-*`
headers report, reserves a unit of it for each request it admits (so requests in flight
never overdraw it), holds every request while the quota is used up or the key is refused,
and logs each episode of trouble once when it starts and once when it ends.

Until a request has succeeded (at start, after a pause, after a failure) requests go out
one at a time: one request learns whether the quota is used up or the API is down, instead
of a whole round of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Callable

from monitor.errors import Held, InvalidApiKey, RateLimited, UpstreamError
from monitor.models import Health, Quota, UpstreamStatus
from monitor.times import format_duration, iso

logger = logging.getLogger(__name__)

QUOTA_SAVE_EVERY = 30.0
"""Seconds between saves of quota figures alone; a change of health is saved at once."""
MIN_QUOTA_WAIT = 60.0
"""A quota refusal holds requests at least this long, whatever clock skew says of the reset."""
UNKNOWN_RESET_WAIT = 3600.0
"""How long a used-up quota holds requests when the API did not say when it resets."""


class Upstream:
    def __init__(
        self,
        *,
        clock: Callable[[], float],
        degraded_after: int = 3,
        invalid_key_retry: float = 300.0,
        status: UpstreamStatus | None = None,
    ) -> None:
        self._clock = clock
        self._degraded_after = degraded_after
        self._invalid_key_retry = invalid_key_retry
        self.status = status or UpstreamStatus()
        self.failure_streak = 0
        self._in_flight = 0
        self._confirmed = False
        """The last answer was a success: requests may go out side by side."""
        self._idle = asyncio.Event()
        self._idle.set()
        self._recovered = False
        self._health_changed = False
        self._saved_at = 0.0
        self._old_key_until = -math.inf
        """Until then a refusal may be of a request sent with the key just replaced."""
        self._key_replaced_at = -math.inf
        """A refusal saved before then was of a key no longer used."""

    # -- admission -----------------------------------------------------------------------

    def held_until(self) -> float | None:
        """When requests may go out again, while they are held."""
        until = self.status.paused_until
        return until if until is not None and self._clock() < until else None

    async def admit(self) -> None:
        """Let one request go out, or raise Held; an admitted request must be answered with
        `succeeded` or `failed`."""
        while not self._confirmed and self._in_flight:
            await self._idle.wait()
        now = self._clock()
        status = self.status
        if status.paused_until is not None:
            if now < status.paused_until:
                raise Held(status.paused_until)
            self._end_pause(now)
        quota = self.status.quota
        if quota.available is not None:
            if quota.reset_at is not None and now >= quota.reset_at:
                self._update(quota=dataclasses.replace(quota, available=None, reset_at=None))
            elif quota.available <= 0:
                until = quota.reset_at or now + UNKNOWN_RESET_WAIT
                self._quota_used_up(until, "its last answer said no requests are left")
                raise Held(until)
            else:
                self._update(quota=dataclasses.replace(quota, available=quota.available - 1))
        self._in_flight += 1
        self._idle.clear()

    def _answered(self, success: bool) -> None:
        self._confirmed = success
        self._in_flight = max(0, self._in_flight - 1)
        if not self._in_flight:
            self._idle.set()

    def _end_pause(self, now: float) -> None:
        self._confirmed = False
        if self.status.health is Health.QUOTA_EXHAUSTED:
            logger.info("the daily quota has reset; polling resumes")
            self._set_health(Health.OK, now, paused_until=None)
        elif self.status.health is Health.INVALID_API_KEY:
            # One request tries the key; the rest wait for its answer as before.
            self._update(paused_until=now + self._invalid_key_retry)
        else:
            self._update(paused_until=None)

    def adopt(self, stored: UpstreamStatus) -> None:
        """What another replica saved: a pause it found (the quota used up, the key refused)
        holds this replica's requests too, instead of costing it a refusal of its own."""
        now = self._clock()
        until = stored.paused_until
        if (
            until is None
            or until <= now
            or stored.health not in (Health.QUOTA_EXHAUSTED, Health.INVALID_API_KEY)
            or until <= (self.status.paused_until or 0.0)
        ):
            return
        if (
            stored.health is Health.INVALID_API_KEY
            and (stored.since or 0.0) <= self._key_replaced_at
        ):
            return  # the refusal of the key just replaced, saved before the new one was tried
        if stored.health is not self.status.health:
            logger.warning(
                "another replica found %s; polling pauses until %s",
                "the daily quota used up"
                if stored.health is Health.QUOTA_EXHAUSTED
                else "the API key refused",
                iso(until),
            )
        self._update(
            health=stored.health,
            since=stored.since,
            paused_until=until,
            last_error=stored.last_error,
            quota=stored.quota,
        )

    def retry_now(self, in_flight_for: float = 0.0) -> None:
        """The key was replaced: a refused key's pause ends, so the new one is tried at once.
        A refusal within `in_flight_for` seconds (the request timeout) may answer a request
        sent with the old key: it does not pause the new one."""
        now = self._clock()
        self._old_key_until = now + in_flight_for
        self._key_replaced_at = now
        if self.status.health is Health.INVALID_API_KEY:
            self._update(paused_until=now)

    # -- outcomes ------------------------------------------------------------------------

    def observe_quota(
        self, limit: int | None, available: int | None, reset_at: float | None
    ) -> None:
        """Figures from an answer's Rate-Limit headers (each None when absent)."""
        quota = self.status.quota
        if limit is not None and limit != quota.limit and quota.limit is not None:
            logger.info("the API reports a daily quota of %d requests", limit)
        if available is not None:
            # Requests still in flight were admitted against the old figure; count them.
            available = max(0, available - max(0, self._in_flight - 1))
        self._update(
            quota=Quota(
                limit if limit is not None else quota.limit,
                available if available is not None else quota.available,
                reset_at if reset_at is not None else quota.reset_at,
            )
        )

    def abandoned(self) -> None:
        """An admitted request was cancelled (at shutdown): it tells nothing."""
        self._in_flight = max(0, self._in_flight - 1)
        if not self._in_flight:
            self._idle.set()

    def succeeded(self) -> None:
        now = self._clock()
        self._answered(success=True)
        streak, self.failure_streak = self.failure_streak, 0
        health = self.status.health
        if health is Health.QUOTA_EXHAUSTED and self.held_until() is not None:
            # Sent before the quota ran out; the pause stands.
            self._update(last_success_at=now)
            return
        if health is Health.DEGRADED:
            since = self.status.since or now
            logger.info(
                "the Inventory Status API recovered after %d failed requests in %s",
                streak,
                format_duration(round(now - since) or 1),
            )
        elif health is Health.INVALID_API_KEY:
            logger.info("the API key is accepted again; polling resumes")
        elif streak:
            logger.info("polling works again after %d failed requests", streak)
        if health is not Health.OK:
            self._recovered = True
            self._set_health(Health.OK, now, paused_until=None, last_error=None)
        self._update(last_success_at=now)

    def failed(self, error: UpstreamError) -> None:
        now = self._clock()
        self._answered(success=False)
        if isinstance(error, InvalidApiKey) and now < self._old_key_until:
            logger.debug("a request sent with the replaced key was refused: %s", error)
        elif isinstance(error, InvalidApiKey):
            self._key_refused(now, error)
        elif isinstance(error, RateLimited) and error.quota:
            wait = UNKNOWN_RESET_WAIT if error.retry_after is None else error.retry_after
            until = now + max(MIN_QUOTA_WAIT, wait)
            self._quota_used_up(until, str(error))
        else:
            self._failed_request(now, error)

    def pop_recovered(self) -> bool:
        """Whether trouble ended since the last call: batches backing off may come due."""
        recovered, self._recovered = self._recovered, False
        return recovered

    def pending_save(self) -> UpstreamStatus | None:
        """The status to save now: after a change of health, or quota figures now and then."""
        now = self._clock()
        if self._health_changed or now - self._saved_at >= QUOTA_SAVE_EVERY:
            self._health_changed = False
            self._saved_at = now
            return self.status
        return None

    def _failed_request(self, now: float, error: UpstreamError) -> None:
        self.failure_streak += 1
        if self.failure_streak == 1:
            logger.warning("a poll failed: %s (no change is assumed; it is retried)", error)
        elif self.failure_streak == self._degraded_after and self.status.health is Health.OK:
            logger.error(
                "the Inventory Status API is failing (%d requests in a row): %s; polls are "
                "retried with backoff and no change is assumed until it answers again",
                self.failure_streak,
                error,
            )
            self._set_health(Health.DEGRADED, now)
        else:
            logger.debug("polling still failing (%d requests): %s", self.failure_streak, error)
        self._update(last_error=str(error))

    def _key_refused(self, now: float, error: InvalidApiKey) -> None:
        retry_at = now + self._invalid_key_retry
        if self.status.health is not Health.INVALID_API_KEY:
            logger.error(
                "this API key has no access to the Inventory Status API (%s); the daemon keeps "
                "running and tries the key again every %s",
                error,
                format_duration(self._invalid_key_retry),
            )
            self._set_health(Health.INVALID_API_KEY, now)
        self._update(paused_until=retry_at, last_error=str(error))

    def hold(self, until: float) -> None:
        """The replicas sharing this key have spent its daily quota: hold until `until`."""
        self._quota_used_up(until, "the replicas sharing this API key have spent it")

    def _quota_used_up(self, until: float, reason: str) -> None:
        if self.status.health is not Health.QUOTA_EXHAUSTED:
            logger.error(
                "the API key's daily quota is used up (%s); polling pauses until %s and "
                "resumes by itself",
                reason,
                iso(until),
            )
            self._set_health(Health.QUOTA_EXHAUSTED, self._clock())
        quota = dataclasses.replace(self.status.quota, available=0, reset_at=until)
        self._update(paused_until=max(until, self.status.paused_until or 0.0), quota=quota)

    def _set_health(self, health: Health, now: float, **changes: object) -> None:
        self._health_changed = True
        self._update(health=health, since=now, **changes)

    def _update(self, **changes: object) -> None:
        self.status = dataclasses.replace(self.status, **changes)  # type: ignore[arg-type]
