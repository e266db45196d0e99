"""Every notifier kind against a real local receiver: SMTP (aiosmtpd), HTTP (aiohttp)."""

from __future__ import annotations

import email
import gc
import json
import ssl
import time
import warnings
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller

from monitor.config import parse_config
from monitor.config.notifiers import NOTIFIER_TYPES
from monitor.errors import ConfigError, DeliveryError
from monitor.models import Availability, Change, Delivery, ResaleStatus, Status
from monitor.notify.notifiers import NOTIFIER_KINDS, build_notifier
from monitor.notify.rendering import Renderer
from tests.e2e import receiver
from tests.support import free_port

CHANGE = Change(
    id="c1",
    event_id="vvG1zZ9pCY3Sp3",
    event_name="Eras Tour — Night 1",
    previous=Availability(Status.TICKETS_NOT_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE),
    current=Availability(Status.TICKETS_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE),
    observed_at=1_800_000_000.0,
)
DELIVERY = Delivery("msg_1", "n", CHANGE, 1, time.time())


def notifier_config(kind: str, **settings: Any) -> Any:
    text = {"ticketmaster": {"api_key": "abcdefgh"}, "notifiers": {"n": {"type": kind, **settings}}}
    return parse_config(json.dumps(text), "test.yaml", {}).notifiers["n"]


MINIMAL: dict[str, dict[str, Any]] = {
    "log": {},
    "webhook": {"url": "http://127.0.0.1:9/hook"},
    "email": {"host": "127.0.0.1", "from": "a@example.com", "to": ["b@example.com"]},
    "apprise": {"urls": ["json://127.0.0.1:9/x"]},
    "mqtt": {"url": "mqtt://127.0.0.1:9"},
}


@pytest.mark.unit
async def test_every_config_kind_is_registered_and_builds_a_notifier() -> None:
    assert set(NOTIFIER_KINDS) == set(NOTIFIER_TYPES) == set(MINIMAL)
    for kind, settings in MINIMAL.items():
        notifier = build_notifier("n", notifier_config(kind, **settings))
        assert (notifier.kind, notifier.name) == (kind, "n")
        await notifier.aclose()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.messages.append(
            email.message_from_bytes(envelope.content, _class=EmailMessage, policy=default)
        )
        return "250 Message accepted for delivery"


@pytest.fixture(scope="module")
def certificate() -> trustme.LeafCert:
    return trustme.CA().issue_cert("127.0.0.1", "localhost")


@pytest.fixture(autouse=True)
def collect_dropped_connections() -> Iterator[None]:
    """aiosmtplib drops a refused or failed connection without waiting for it to close, and
    aiosmtpd's thread drops its side when the server stops; collected after each test here,
    their ResourceWarnings cannot land in an unrelated later test."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


class ClosingController(Controller):
    """An aiosmtpd server that closes its connections as it stops. aiosmtpd leaves them to
    the garbage collector, whose ResourceWarning then fails whichever test runs later."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: list[Any] = []

    def factory(self) -> Any:
        session = super().factory()  # type: ignore[no-untyped-call]  # aiosmtpd is untyped
        self.sessions.append(session)
        return session

    def stop(self, no_assert: bool = False) -> None:
        def close_all() -> None:
            for session in self.sessions:
                if getattr(session, "transport", None) is not None:
                    session.transport.close()

        if self.loop.is_running():
            self.loop.call_soon_threadsafe(close_all)
        super().stop(no_assert)


def smtp_server(tls: ssl.SSLContext | None) -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = ClosingController(
        inbox, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=tls is not None
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def plain_smtp() -> Iterator[tuple[Inbox, int]]:
    yield from smtp_server(None)


@pytest.fixture
def starttls_smtp(certificate: trustme.LeafCert) -> Iterator[tuple[Inbox, int]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    yield from smtp_server(context)


def email_settings(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "from": "alerts@example.com",
        "to": ["me@example.com", "you@example.com"],
        "timeout": "5s",
        **extra,
    }


async def test_email_over_starttls_carries_text_html_and_a_link(
    starttls_smtp: tuple[Inbox, int],
) -> None:
    inbox, port = starttls_smtp
    notifier = build_notifier("n", notifier_config("email", **email_settings(port, verify=False)))
    answer = await notifier.send(DELIVERY)
    assert answer == "SMTP Message accepted for delivery"
    (message,) = inbox.messages
    assert message["Subject"] == "Eras Tour — Night 1: tickets available"
    assert message["To"] == "me@example.com, you@example.com"
    assert inbox.envelopes[0].rcpt_tos == ["me@example.com", "you@example.com"]
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None
    assert html is not None
    text = plain.get_content()
    assert "TICKETS_NOT_AVAILABLE → TICKETS_AVAILABLE" in text
    assert "https://www.ticketmaster.com/event/vvG1zZ9pCY3Sp3" in text
    assert "2027-01-15T08:00:00Z" in text
    assert 'href="https://www.ticketmaster.com/event/vvG1zZ9pCY3Sp3"' in html.get_content()


async def test_starttls_that_the_server_does_not_offer_is_refused(
    plain_smtp: tuple[Inbox, int],
) -> None:
    inbox, port = plain_smtp
    notifier = build_notifier("n", notifier_config("email", **email_settings(port)))
    with pytest.raises(DeliveryError, match="refusing to send in plain text") as caught:
        await notifier.send(DELIVERY)
    assert not caught.value.retryable
    assert inbox.messages == []


async def test_an_untrusted_certificate_is_refused_unless_verify_is_off(
    starttls_smtp: tuple[Inbox, int],
) -> None:
    inbox, port = starttls_smtp
    notifier = build_notifier("n", notifier_config("email", **email_settings(port)))
    with pytest.raises(DeliveryError, match=r"(?i)certificate.verify.failed"):
        await notifier.send(DELIVERY)
    await notifier.aclose()
    assert inbox.messages == []
    trusting = build_notifier("n", notifier_config("email", **email_settings(port, verify=False)))
    await trusting.send(DELIVERY)
    await trusting.aclose()
    assert len(inbox.messages) == 1, "with verify off the same server is accepted"


async def test_plain_smtp_when_asked_for_and_a_custom_subject(
    plain_smtp: tuple[Inbox, int],
) -> None:
    inbox, port = plain_smtp
    settings = email_settings(
        port, security="none", subject="{{ event_id }} is {{ current.status }}"
    )
    await build_notifier("n", notifier_config("email", **settings)).send(DELIVERY)
    assert inbox.messages[0]["Subject"] == "vvG1zZ9pCY3Sp3 is TICKETS_AVAILABLE"


async def test_apprise_reaches_a_real_http_service() -> None:
    async with receiver() as hook:
        url = hook.url.replace("http://", "json://")
        notifier = build_notifier("n", notifier_config("apprise", urls=[url]))
        assert await notifier.send(DELIVERY) == "notified 1 URLs"
        ((_, body),) = hook.requests
    sent = json.loads(body)
    assert sent["title"] == "Eras Tour — Night 1: tickets available"
    assert "TICKETS_NOT_AVAILABLE → TICKETS_AVAILABLE" in sent["message"]


async def test_apprise_failure_is_a_retryable_delivery_error_in_the_services_words() -> None:
    url = "json://me:apprise-pw-77@127.0.0.1:9/x"
    notifier = build_notifier("n", notifier_config("apprise", urls=[url]))
    with pytest.raises(DeliveryError) as caught:
        await notifier.send(DELIVERY)
    assert caught.value.retryable
    message = str(caught.value)
    assert "apprise-pw-77" not in message, "the service's words, never its URL"
    assert message.startswith("apprise could not notify every one of 1 URLs: ")
    assert "Connection refused" in message or "connection" in message.lower(), message


@pytest.mark.unit
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "notaservice://foo", "no Apprise service is called 'notaservice'", id="unknown"
        ),
        pytest.param(
            "xmpp://me:pw@host/you",
            "Apprise's XMPP service needs slixmpp",
            id="missing plugin library",
        ),
        pytest.param("ntfys://", "the ntfy URL names no target", id="no topic"),
        pytest.param(
            "discord://123",
            "Apprise cannot use this discord:// URL: An invalid Discord Webhook Token",
            id="missing parts",
        ),
    ],
)
def test_apprise_urls_are_checked_by_apprise(url: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        notifier_config("apprise", urls=["json://127.0.0.1:9/x", url])
    (problem,) = caught.value.problems
    assert f"notifiers.n.urls: URL 2: {expected}" in problem, problem


@pytest.mark.unit
def test_templates_mark_test_messages_and_bad_templates_are_config_errors() -> None:
    test_change = Change("test_1", "E", None, CHANGE.previous, CHANGE.current, 0.0)
    assert Renderer().subject([test_change]) == "[test] E: tickets available"
    custom = Renderer(subject="{{ event_id }} is back")
    assert custom.subject([test_change]) == "[test] E is back", "whatever the template"
    with pytest.raises(ConfigError, match=r"notifiers\.n\.subject: template line 1"):
        notifier_config("apprise", urls=["json://x"], subject="{% if %}")
