"""What every command shares: exit codes, loading the config, running until a signal, the
database, and plain-text tables."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.config import Config, config_warnings, load_config
from monitor.errors import Invalid, MonitorError
from monitor.redact import redactor
from monitor.times import iso

if TYPE_CHECKING:
    from monitor.errors import Refused

logger = logging.getLogger("monitor")

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
DEFAULT_CONFIG = "config/monitor.yaml"
DEMO_CONFIG = "config/demo.yaml"
WHO = "cli"
"""The audit's name for a write made from the command line."""


def load(path: Path) -> Config:
    config = load_config(path)
    redactor.add(config.secrets())
    for warning in config_warnings(config):
        print(f"warning: {warning}", file=sys.stderr)
    return config


def run_until_stopped(body: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Run `body` until it returns or SIGTERM/SIGINT sets its stop event."""

    async def guarded() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await body(stop)
        except MonitorError:
            raise
        except Exception:
            logger.exception("crashed")
            return EXIT_FAILURE
        return EXIT_OK

    return asyncio.run(guarded())


@asynccontextmanager
async def database(config: Config) -> AsyncIterator[AsyncEngine]:
    """The configured database, migrated to the newest schema."""
    from monitor.store.engine import create_engine, upgrade

    engine = create_engine(config.database.url)
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


def when(timestamp: float | None) -> str:
    return "-" if timestamp is None else iso(timestamp)


Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Handler = Callable[[argparse.Namespace], int]


def command(
    commands: Commands,
    name: str,
    handler: Handler,
    help_: str,
    *,
    config: str | None = DEFAULT_CONFIG,
    examples: Sequence[str] = (),
) -> argparse.ArgumentParser:
    """A subcommand calling `handler`, with a --config option unless `config` is None, and
    its `examples` at the end of its --help."""
    sub: argparse.ArgumentParser = commands.add_parser(
        name, help=help_, description=help_, **with_examples(examples)
    )
    if config is not None:
        sub.add_argument(
            "--config",
            "-c",
            default=config,
            type=Path,
            help=f"the YAML configuration (default: {config})",
        )
    sub.set_defaults(handler=handler)
    return sub


def with_examples(examples: Sequence[str]) -> dict[str, Any]:
    """The parser settings that end a command's --help with one or two examples."""
    if not examples:
        return {}
    lines = "\n".join(f"  inventory-monitor {example}" for example in examples)
    return {
        "epilog": f"examples:\n{lines}",
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def refused(command: str, exc: Refused) -> int:
    """A write the service refused: one line naming the field, and the exit code (2 for
    bad input, 1 otherwise)."""
    where = f"{exc.field}: " if exc.field else ""
    print(f"{command}: {where}{exc}", file=sys.stderr)
    return EXIT_CONFIG if isinstance(exc, Invalid) else EXIT_FAILURE
