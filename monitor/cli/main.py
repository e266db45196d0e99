"""The `inventory-monitor` command: the parser and the exit codes of every command group."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from monitor import __version__
from monitor.cli import check, daemon, deliveries, history, notify
from monitor.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK
from monitor.errors import ConfigError, MonitorError
from monitor.redact import redact


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except MonitorError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inventory-monitor",
        description="Watch Ticketmaster events and report ticket availability changes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (daemon, check, history, deliveries, notify):
        group.register(commands)
    return parser
