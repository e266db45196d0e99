"""`notify test`: a clearly marked test message through one notifier."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

from monitor.cli.common import DEFAULT_CONFIG, EXIT_CONFIG, Commands, load, with_examples
from monitor.config import Config
from monitor.errors import DeliveryError
from monitor.models import Availability, Change, Delivery, ResaleStatus, Status
from monitor.notify.notifiers import build_notifier
from monitor.redact import redact, redactor


def register(commands: Commands) -> None:
    notify = commands.add_parser("notify", help="notifier tools")
    notify_commands = notify.add_subparsers(dest="notify_command", required=True, metavar="COMMAND")
    test = notify_commands.add_parser(
        "test",
        help="send a test message through one notifier",
        **with_examples(["notify test ops --config config/monitor.yaml"]),
    )
    test.add_argument("name", help="the notifier's name in the config")
    test.add_argument("--config", "-c", default=DEFAULT_CONFIG, type=Path)
    test.set_defaults(handler=_notify_test)


def _notify_test(args: argparse.Namespace) -> int:
    config = load(args.config)
    if args.name not in config.notifiers:
        known = ", ".join(sorted(config.notifiers)) or "none are configured"
        print(f"error: no notifier is named {args.name!r} (known: {known})", file=sys.stderr)
        return EXIT_CONFIG
    return asyncio.run(send_test(config, args.name))


async def send_test(config: Config, name: str) -> int:
    """Send a clearly marked test message through one notifier, outside the outbox."""
    redactor.add(config.secrets())
    now = time.time()
    # A realistic sample, so that a receiver can test its parsing; `test` marks it.
    change = Change(
        id=f"test_{uuid.uuid4().hex}",
        event_id="vvG1zZ9pCY3Sp3",
        event_name="Sample show (a test message from inventory-monitor, not a real change)",
        previous=Availability(Status.TICKETS_NOT_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE),
        current=Availability(Status.TICKETS_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE),
        observed_at=now,
    )
    notifier = build_notifier(name, config.notifiers[name])
    try:
        answer = await notifier.send(Delivery(f"test_{uuid.uuid4().hex}", name, change, 1, now))
    except DeliveryError as exc:
        print(f"{name}: failed: {redact(str(exc))}")
        return 1
    finally:
        await notifier.aclose()
    print(f"{name}: sent ({answer})")
    return 0
