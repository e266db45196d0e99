"""`notify test`: a clearly marked test message through one notifier."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from monitor.cli.common import DEFAULT_CONFIG, EXIT_CONFIG, Commands, load, with_examples
from monitor.config import Config
from monitor.errors import DeliveryError
from monitor.notify.documents import test_delivery
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
    notifier = build_notifier(name, config.notifiers[name])
    try:
        answer = await notifier.send(test_delivery(name, time.time()))
    except DeliveryError as exc:
        print(f"{name}: failed: {redact(str(exc))}")
        return 1
    finally:
        await notifier.aclose()
    print(f"{name}: sent ({answer})")
    return 0
