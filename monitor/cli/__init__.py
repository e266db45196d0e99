"""The `inventory-monitor` command: argument parsing, exit codes and signals. No business logic."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from monitor import __version__
from monitor.config import Config, config_warnings, load_config
from monitor.errors import ConfigError, MonitorError
from monitor.logs import setup_logging
from monitor.redact import redact, redactor
from monitor.times import iso

logger = logging.getLogger("monitor")

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
DEFAULT_CONFIG = "config/monitor.yaml"
DEMO_CONFIG = "config/demo.yaml"


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

    def command(
        name: str,
        handler: Callable[[argparse.Namespace], int],
        help_: str,
        config: str | None = DEFAULT_CONFIG,
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_)
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

    command("run", _run, "run the daemon until SIGTERM or SIGINT")
    command("health", _health, "exit 0 when the running daemon answers /healthz (for Docker)")
    check = command("check", _check, "validate a configuration and summarise it")
    check.add_argument(
        "--live",
        action="store_true",
        help="also make real requests with the key: does it work, which IDs are unknown",
    )
    check.add_argument(
        "--all",
        action="store_true",
        help="with --live, check every watched event (each request spends quota)",
    )
    _simulator_arguments(
        command("simulate", _simulate, "serve a local Ticketmaster-compatible API", config=None)
    )
    command("demo", _demo, "run the simulator and the daemon together", config=DEMO_CONFIG)
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_commands.add_parser("upgrade", help="apply migrations to the newest schema")
    upgrade.add_argument("--config", "-c", default=DEFAULT_CONFIG, type=Path)
    upgrade.set_defaults(handler=_db_upgrade)
    command("status", _status, "print the current state of every watched event")
    history = command("history", _history, "print the snapshots and changes of one event")
    history.add_argument("event_id")

    export = command("export", _export, "write the timeline of changes as CSV or JSON")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--event", metavar="ID", help="only this event's changes")
    export.add_argument(
        "--since", metavar="TIME", help="only changes from this ISO 8601 date-time (UTC) on"
    )

    deliveries = command("deliveries", _deliveries, "list recent deliveries and their outcome")
    deliveries.add_argument("--dead", action="store_true", help="only dead deliveries")
    deliveries.add_argument("--limit", type=int, default=50)
    deliveries_commands = deliveries.add_subparsers(dest="deliveries_command", metavar="COMMAND")
    retry = deliveries_commands.add_parser("retry", help="put dead deliveries back in the queue")
    # SUPPRESS: a --config given before `retry` must not be reset by this parser's default.
    retry.add_argument("--config", "-c", default=argparse.SUPPRESS, type=Path)
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", default=[], metavar="ID")
    which.add_argument("--all-dead", action="store_true")
    retry.set_defaults(handler=_retry)

    notify = commands.add_parser("notify", help="notifier tools")
    notify_commands = notify.add_subparsers(dest="notify_command", required=True, metavar="COMMAND")
    test = notify_commands.add_parser("test", help="send a test message through one notifier")
    test.add_argument("name", help="the notifier's name in the config")
    test.add_argument("--config", "-c", default=DEFAULT_CONFIG, type=Path)
    test.set_defaults(handler=_notify_test)
    return parser


def _simulator_arguments(sim: argparse.ArgumentParser) -> None:
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--api-key", default="sim-key", help="the key it accepts (default: sim-key)")
    sim.add_argument("--seed", type=int, default=0, help="seed of the random status walk")
    sim.add_argument(
        "--change-every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="change one random event's status this often",
    )
    sim.add_argument(
        "--rate", type=float, default=None, help="answer a spike arrest 429 above this many/s"
    )
    sim.add_argument(
        "--quota", type=int, default=None, help="answer a quota 429 after this many a day"
    )
    sim.add_argument("--latency", type=float, default=0.0, metavar="SECONDS")
    sim.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="answer this share of requests (0 to 1) with an HTML 503",
    )


def _load(path: Path) -> Config:
    config = load_config(path)
    redactor.add(config.secrets())
    for warning in config_warnings(config):
        print(f"warning: {warning}", file=sys.stderr)
    return config


def _run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    setup_logging(config.logging.level, config.logging.format)
    return _serve(lambda stop: _daemon(config, stop, args.config))


def _serve(body: Callable[[asyncio.Event], Awaitable[None]]) -> int:
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


async def _daemon(config: Config, stop: asyncio.Event, path: Path | None = None) -> None:
    from monitor.app import Monitor

    async with Monitor(config, config_path=path) as monitor:
        if path is not None:
            reloading: set[asyncio.Task[bool]] = set()

            def reload() -> None:
                task = asyncio.create_task(monitor.reload())
                reloading.add(task)
                task.add_done_callback(reloading.discard)

            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
        logger.info("started; polling %s", config.ticketmaster.base_url)
        await stop.wait()
        logger.info("stopping")
    logger.info("stopped")


def _health(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    server = load_config(args.config).server
    if not server.enabled:
        print("the HTTP server is disabled (server.enabled: false)", file=sys.stderr)
        return EXIT_FAILURE
    host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "") else server.host  # noqa: S104
    url = f"http://{host}:{server.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=4) as answer:
            healthy = answer.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK if healthy else EXIT_FAILURE


def _check(args: argparse.Namespace) -> int:
    from monitor.times import format_duration
    from monitor.upstream.quota import plan_for, quota_warning

    config = _load(args.config)
    tm = config.ticketmaster
    intervals = sorted({config.interval_of(e) for e in config.events})
    plan = plan_for(config)
    print(f"{args.config}: valid")
    print(f"  upstream:  {tm.base_url} (batches of {tm.batch_size})")
    print(f"  database:  {redact(config.database.url)}")
    print(f"  events:    {len(config.events)}")
    print(f"  intervals: {', '.join(format_duration(i) for i in intervals) or '-'}")
    print(
        f"  quota:     {plan.requests_per_day:,.0f} requests a day of {plan.quota:,} "
        f"({plan.requests_per_day / plan.quota:.0%}), at most {tm.requests_per_second:g} a second"
    )
    for name, notifier in config.notifiers.items():
        listeners = sum(1 for e in config.events if name in config.targets_of(e))
        print(f"  notifier:  {name} ({notifier.type}), {listeners} events")
    warning = quota_warning(config, plan)
    if warning:
        fitting = "fit_quota stretches them" if config.polling.fit_quota else "warning"
        print(f"{fitting}: {warning}", file=sys.stderr)
    if args.live:
        return _check_live(config, every=args.all)
    return EXIT_OK


def _check_live(config: Config, *, every: bool) -> int:
    from monitor.cli.check_live import DEFAULT_REQUESTS, check_live

    report = asyncio.run(check_live(config, None if every else DEFAULT_REQUESTS))
    if report.key_refused:
        print(f"live: the API key is refused: {report.error}")
        return EXIT_FAILURE
    if report.error:
        print(f"live: the API did not answer properly: {report.error}")
        return EXIT_FAILURE
    print(f"live: the API key works ({report.requests} requests, {report.latency_ms:.0f} ms each)")
    quota = report.quota
    if quota.available is not None:
        resets = f", resets {iso(quota.reset_at)}" if quota.reset_at else ""
        limit = f"{quota.limit:,}" if quota.limit else "?"
        print(f"  quota left: {quota.available:,} of {limit}{resets}")
    if report.watched:
        rest = "" if report.checked >= report.watched else " (--all checks every one)"
        print(f"  checked:    {report.checked} of {report.watched} watched events{rest}")
    for event_id in report.unknown:
        print(f"  {event_id}: answered UNKNOWN, probably an invalid event ID")
    for event_id in report.missing:
        print(f"  {event_id}: left out of the answer")
    return EXIT_OK


def _simulate(args: argparse.Namespace) -> int:
    from monitor.devtools.simulator import Simulator, serve

    setup_logging()
    simulator = Simulator(
        api_key=args.api_key,
        seed=args.seed,
        change_every=args.change_every,
        rate=args.rate,
        quota=args.quota,
        latency=args.latency,
    )
    simulator.fault_rate = args.fault_rate

    async def body(stop: asyncio.Event) -> None:
        async with serve(simulator, args.host, args.port) as url:
            print(f"simulator listening on {url} (API key: {args.api_key})", flush=True)
            await stop.wait()

    return _serve(body)


def _demo(args: argparse.Namespace) -> int:
    from monitor.devtools.simulator import Simulator, serve

    config = _load(args.config)
    setup_logging(config.logging.level, config.logging.format)
    upstream = urlsplit(config.ticketmaster.base_url)
    simulator = Simulator(
        api_key=config.ticketmaster.api_key.get_secret_value(),
        change_every=3.0,
        watched=[e.id for e in config.events],
        rate=config.ticketmaster.requests_per_second,
        quota=config.ticketmaster.daily_quota,
    )

    async def body(stop: asyncio.Event) -> None:
        async with serve(simulator, upstream.hostname or "127.0.0.1", upstream.port or 80):
            print(
                f"demo: a simulated Ticketmaster API at {config.ticketmaster.base_url} changes "
                f"one of {len(config.events)} events every 3s; each change is logged below"
                + (
                    f" and shown at http://{config.server.host}:{config.server.port}/"
                    if config.server.enabled
                    else ""
                )
                + ". Ctrl-C stops.",
                flush=True,
            )
            await _daemon(config, stop, args.config)

    return _serve(body)


def _db_upgrade(args: argparse.Namespace) -> int:
    from monitor.store.engine import create_engine, upgrade

    config = _load(args.config)

    async def body() -> None:
        engine = create_engine(config.database.url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(body())
    print(f"database {redact(config.database.url)} is at the newest schema")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from monitor.cli.report import print_status

    config = _load(args.config)
    return asyncio.run(print_status(config))


def _history(args: argparse.Namespace) -> int:
    from monitor.cli.report import print_history

    config = _load(args.config)
    return asyncio.run(print_history(config, args.event_id))


def _export(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from monitor.cli.report import export_changes

    since = None
    if args.since is not None:
        try:
            moment = datetime.fromisoformat(args.since.replace("Z", "+00:00"))
        except ValueError:
            print(
                f"error: --since: expected an ISO 8601 date-time, got {args.since!r}",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        since = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    config = _load(args.config)
    return asyncio.run(export_changes(config, args.format, args.event, since))


def _deliveries(args: argparse.Namespace) -> int:
    from monitor.cli.report import print_deliveries

    config = _load(args.config)
    return asyncio.run(print_deliveries(config, dead_only=args.dead, limit=args.limit))


def _retry(args: argparse.Namespace) -> int:
    from monitor.cli.report import requeue

    config = _load(args.config)
    return asyncio.run(requeue(config, args.ids, all_dead=args.all_dead))


def _notify_test(args: argparse.Namespace) -> int:
    from monitor.cli.report import send_test

    config = _load(args.config)
    if args.name not in config.notifiers:
        known = ", ".join(sorted(config.notifiers)) or "none are configured"
        print(f"error: no notifier is named {args.name!r} (known: {known})", file=sys.stderr)
        return EXIT_CONFIG
    return asyncio.run(send_test(config, args.name))
