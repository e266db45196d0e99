"""The `email` notifier: a plain-text and HTML message per change, over SMTP (aiosmtplib).

`security: starttls` requires STARTTLS: a server that does not offer it is a failure, never
a silent fall back to plain text. Certificates are verified unless `verify: false`.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from monitor.config import EmailNotifierConfig
from monitor.errors import DeliveryError
from monitor.models import Delivery, Notice
from monitor.notify.rendering import Renderer
from monitor.redact import redact


class EmailNotifier:
    kind = "email"

    def __init__(self, name: str, config: EmailNotifierConfig) -> None:
        self.name = name
        self.config = config
        self._renderer = Renderer(subject=config.subject, body=config.body, html=config.html)

    def message(self, delivery: Delivery) -> EmailMessage:
        changes = delivery.changes
        message = EmailMessage()
        message["Subject"] = self._renderer.subject(changes)
        message["From"] = self.config.sender
        message["To"] = ", ".join(self.config.to)
        message["Date"] = formatdate(delivery.attempted_at, usegmt=True)
        # Stable across retries, so mail clients can tell a resend from a new change.
        message["Message-ID"] = make_msgid(idstring=delivery.id, domain="inventory-monitor")
        message.set_content(self._renderer.body(changes))
        message.add_alternative(self._renderer.html(changes), subtype="html")
        return message

    async def send(self, delivery: Delivery) -> str:
        return await self._send(self.message(delivery))

    async def send_notice(self, notice: Notice) -> str:
        message = EmailMessage()
        message["Subject"] = notice.subject
        message["From"] = self.config.sender
        message["To"] = ", ".join(self.config.to)
        message["Date"] = formatdate(notice.at, usegmt=True)
        message["Message-ID"] = make_msgid(idstring=notice.id, domain="inventory-monitor")
        message.set_content(notice.body)
        return await self._send(message)

    async def _send(self, message: EmailMessage) -> str:
        config = self.config
        try:
            _, reply = await aiosmtplib.send(
                message,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=None if config.password is None else config.password.get_secret_value(),
                use_tls=config.security == "tls",
                start_tls=config.security == "starttls",
                validate_certs=config.verify,
                timeout=config.timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            # 4xx is the server asking to come back later; 5xx will not get better.
            raise DeliveryError(
                f"SMTP {exc.code} {redact(exc.message)}", retryable=exc.code < 500, status=exc.code
            ) from None
        except aiosmtplib.SMTPException as exc:
            text = redact(str(exc))
            if "STARTTLS" in text:
                raise DeliveryError(
                    f"{text}: refusing to send in plain text (security: starttls)",
                    retryable=False,
                ) from None
            raise DeliveryError(f"{type(exc).__name__}: {text}") from None
        except OSError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {redact(str(exc))}") from None
        return f"SMTP {redact(reply)}"

    async def aclose(self) -> None:
        return None
