"""The `inventory-monitor` command: the parser and the exit codes of every command group."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from monitor import __version__
from monitor.cli import (
    check,
    completion,
    daemon,
    deliveries,
    find,
    history,
    notify,
    replay,
    user,
    watch,
)
from monitor.cli.common import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK
from monitor.errors import ConfigError, MonitorError
from monitor.redact import redact

EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as Unix tools do on SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except MonitorError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="inventory-monitor",
        description="Watch Ticketmaster events and report ticket availability changes.",
    )
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (
        daemon,
        check,
        find,
        watch,
        user,
        history,
        replay,
        deliveries,
        notify,
        completion,
    ):
        group.register(commands)
    return root
