"""One exception hierarchy for everything the monitor raises on purpose."""

from __future__ import annotations

from monitor.times import iso


class MonitorError(Exception):
    """Root of every error the monitor raises deliberately."""


class ConfigError(MonitorError):
    """The configuration cannot be used; the message names the file and the key path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        # One line each: a person reads one line that names the problem and where it is.
        self.problems = [f"{source}:{_one_line(problem)}" for problem in problems]
        super().__init__("\n".join(self.problems))


def _one_line(text: str) -> str:
    first, *rest = text.splitlines() or [""]
    return " ".join([first.rstrip(), *(part.strip() for part in rest)])


class UpstreamError(MonitorError):
    """A request to the Inventory Status API failed; the poll produced no reading."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True) -> None:
        self.status = status
        self.retryable = retryable
        super().__init__(message)


class RateLimited(UpstreamError):
    """Ticketmaster refused the request for rate or quota reasons."""

    def __init__(self, message: str, *, retry_after: float | None, quota: bool) -> None:
        self.retry_after = retry_after
        self.quota = quota
        super().__init__(message, status=429)


class InvalidApiKey(UpstreamError):
    """The API key is unknown or has no access to the Inventory Status API."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=401, retryable=False)


class RequestTooLarge(UpstreamError):
    """The request's URL was too long for the API or a proxy before it (HTTP 414, or a 400
    that says so): fewer IDs per request will pass. Not a failed poll."""

    def __init__(self, message: str, *, status: int, carried: int) -> None:
        super().__init__(message, status=status)
        self.carried = carried
        """How many IDs the refused request carried."""


class Held(MonitorError):
    """No request may go out before `until`: the quota is used up or the key is refused."""

    def __init__(self, until: float) -> None:
        self.until = until
        super().__init__(
            f"no requests before {iso(until)} (the quota is used up, or the key refused)"
        )


class DeliveryError(MonitorError):
    """A notifier could not deliver; `retryable` tells the dispatcher whether to try again."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class StoreError(MonitorError):
    """The database could not be reached or migrated."""


class Refused(MonitorError):
    """A write that cannot be done, and the field that is wrong, if one is. Which kind it is
    says why; the HTTP layer and the CLI turn the kind into a status or an exit code."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class Invalid(Refused):
    """The input is wrong: a value, a field, a shape."""


class NotFound(Refused):
    """What it names does not exist (or is not the asker's to see)."""


class Conflict(Refused):
    """It cannot be done as things stand: it exists already, a limit, the config file's."""


class Forbidden(Refused):
    """The asker may not do it: writes are off, or a stale form."""


class Unauthorized(Refused):
    """The asker is not who they say: a wrong password or token."""


class Unsupported(Refused):
    """The body is not of a type taken here (a form where JSON goes, or the reverse)."""
