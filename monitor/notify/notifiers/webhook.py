"""The `webhook` notifier: a JSON POST per change, signed as Standard Webhooks define.

Headers: `webhook-id` (the delivery id, stable across retries), `webhook-timestamp` (Unix
seconds of this attempt) and, with a secret, `webhook-signature: v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">` keyed with the base64-decoded part of `whsec_...`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from monitor import USER_AGENT
from monitor.backoff import retry_after_seconds
from monitor.config import WebhookNotifierConfig
from monitor.errors import DeliveryError
from monitor.models import Delivery, Notice
from monitor.netguard import BlockedAddress, GuardedResolver, host_problem
from monitor.notify.documents import change_document, change_message
from monitor.redact import redact
from monitor.times import iso

logger = logging.getLogger(__name__)

_RETRYABLE = {408, 425, 429}


def webhook_body(delivery: Delivery, subscriber: str | None = None) -> bytes:
    """The documented JSON contract; identical for every attempt of a delivery.

    A grouped message (`group_window`) carries `inventory.changed.group` with a list. A
    message to a user's channel names the user (`data.subscriber`; beside `data` in a
    grouped one).
    """
    change = delivery.change
    if delivery.group:
        group: dict[str, Any] = {
            "type": "inventory.changed.group",
            "timestamp": iso(change.observed_at),
            "data": [change_document(c) for c in delivery.changes],
        }
        if subscriber is not None:
            group["subscriber"] = subscriber
        return orjson.dumps(group)
    message = change_message(change)
    if subscriber is not None:
        message["data"] = {**message["data"], "subscriber": subscriber}
    return orjson.dumps(message)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


class WebhookNotifier:
    kind = "webhook"

    def __init__(
        self,
        name: str,
        config: WebhookNotifierConfig,
        *,
        subscriber: str | None = None,
        guarded: bool = False,
    ) -> None:
        self.name = name
        self.config = config
        self._subscriber = subscriber
        """The user whose channel this is, named in every message."""
        self._guarded = guarded
        """Refuse private and loopback addresses (see `netguard`): a member's channel."""
        self._session: aiohttp.ClientSession | None = None

    async def send(self, delivery: Delivery) -> str:
        body = webhook_body(delivery, self._subscriber)
        return await self._post(body, delivery.id, int(delivery.attempted_at))

    async def send_notice(self, notice: Notice) -> str:
        body = orjson.dumps(
            {
                "type": notice.kind.message_type,
                "timestamp": iso(notice.at),
                "data": {"subject": notice.subject, "body": notice.body},
            }
        )
        return await self._post(body, notice.id, int(notice.at))

    async def _post(self, body: bytes, message_id: str, timestamp: int) -> str:
        headers = {
            **self.config.headers,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
        }
        if self.config.secret is not None:
            headers["webhook-signature"] = sign(
                self.config.secret.get_secret_value(), message_id, timestamp, body
            )
        session = self._opened()
        try:
            async with session.post(
                self.config.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
            ) as response:
                status = response.status
                retry_after = retry_after_seconds(response.headers.get("Retry-After"), time.time())
        except TimeoutError:
            raise DeliveryError(f"no answer within {self.config.timeout:g}s") from None
        except aiohttp.ClientError as exc:
            refused = isinstance(exc, aiohttp.ClientConnectorError) and isinstance(
                exc.os_error, BlockedAddress
            )
            raise DeliveryError(redact(_in_words(exc)), retryable=not refused) from None
        if 200 <= status < 300:
            return f"HTTP {status}"
        raise _refused(status, retry_after)

    def _opened(self) -> aiohttp.ClientSession:
        """The session, opened at the first send; a guarded webhook is refused here when its
        host is a private address, and its session resolves no name to one."""
        if self._guarded:
            problem = host_problem(urlsplit(self.config.url).hostname or "")
            if problem is not None:
                raise DeliveryError(f"refused: {problem}", retryable=False)
        if self._session is None:
            resolver = GuardedResolver() if self._guarded else None
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver))
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _in_words(error: aiohttp.ClientError) -> str:
    """What went wrong, as a person says it; aiohttp's class name only in the debug log."""
    logger.debug("webhook request failed with %s: %s", type(error).__name__, error)
    if isinstance(error, aiohttp.ClientConnectorError):
        where = f"{error.host}:{error.port}"
        cause = error.os_error
        if isinstance(cause, BlockedAddress):
            return f"refused: {cause}"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused by {where}"
        if isinstance(cause, socket.gaierror):
            return f"no such host: {error.host}"
        return f"could not connect to {where}: {cause.strerror or cause}"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the receiver closed the connection without an answer"
    return f"the request failed: {error}"


def _refused(status: int, retry_after: float | None) -> DeliveryError:
    """A receiver's answer other than 2xx, in words: retried on 5xx and on `_RETRYABLE`."""
    retryable = status in _RETRYABLE or status >= 500
    reason = {410: " (the endpoint is gone)"}.get(status, "")
    if 300 <= status < 400:
        reason = " (redirects are not followed: point the URL at the final address)"
    return DeliveryError(
        f"HTTP {status}{reason}", retryable=retryable, status=status, retry_after=retry_after
    )
