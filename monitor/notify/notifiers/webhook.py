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

import aiohttp
import orjson

from monitor import USER_AGENT
from monitor.backoff import retry_after_seconds
from monitor.config import WebhookNotifierConfig
from monitor.errors import DeliveryError
from monitor.models import Delivery, Notice
from monitor.notify.documents import change_document, change_message
from monitor.redact import redact
from monitor.times import iso

logger = logging.getLogger(__name__)

_RETRYABLE = {408, 425, 429}


def webhook_body(delivery: Delivery) -> bytes:
    """The documented JSON contract; identical for every attempt of a delivery.

    A grouped message (`group_window`) carries `inventory.changed.group` with a list.
    """
    change = delivery.change
    if delivery.group:
        return orjson.dumps(
            {
                "type": "inventory.changed.group",
                "timestamp": iso(change.observed_at),
                "data": [change_document(c) for c in delivery.changes],
            }
        )
    return orjson.dumps(change_message(change))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


class WebhookNotifier:
    kind = "webhook"

    def __init__(self, name: str, config: WebhookNotifierConfig) -> None:
        self.name = name
        self.config = config
        self._session: aiohttp.ClientSession | None = None

    async def send(self, delivery: Delivery) -> str:
        return await self._post(webhook_body(delivery), delivery.id, int(delivery.attempted_at))

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
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
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
            raise DeliveryError(redact(_in_words(exc))) from None
        if 200 <= status < 300:
            return f"HTTP {status}"
        retryable = status in _RETRYABLE or status >= 500
        reason = {410: " (the endpoint is gone)"}.get(status, "")
        if 300 <= status < 400:
            reason = " (redirects are not followed: point the URL at the final address)"
        raise DeliveryError(
            f"HTTP {status}{reason}", retryable=retryable, status=status, retry_after=retry_after
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _in_words(error: aiohttp.ClientError) -> str:
    """What went wrong, as a person says it; aiohttp's class name only in the debug log."""
    logger.debug("webhook request failed with %s: %s", type(error).__name__, error)
    if isinstance(error, aiohttp.ClientConnectorError):
        where = f"{error.host}:{error.port}"
        cause = error.os_error
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused by {where}"
        if isinstance(cause, socket.gaierror):
            return f"no such host: {error.host}"
        return f"could not connect to {where}: {cause.strerror or cause}"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the receiver closed the connection without an answer"
    return f"the request failed: {error}"
