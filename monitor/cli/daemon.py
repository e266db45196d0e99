"""The long-running commands: `run`, `health`, `simulate`, `demo` and `db upgrade`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from monitor.cli.common import (
    DEMO_CONFIG,
    EXIT_FAILURE,
    EXIT_OK,
    Commands,
    command,
    load,
    logger,
    run_until_stopped,
)
from monitor.config import Config, load_config
from monitor.logs import setup_logging
from monitor.redact import redact
from monitor.times import parse_duration


def register(commands: Commands) -> None:
    command(
        commands,
        "run",
        _run,
        "run the daemon until SIGTERM or SIGINT",
        examples=("run --config config/monitor.yaml",),
    )
    command(
        commands,
        "health",
        _health,
        "exit 0 when the running daemon answers /healthz (for Docker)",
        examples=("health --config /config/monitor.yaml",),
    )
    _simulator_arguments(
        command(
            commands,
            "simulate",
            _simulate,
            "serve a local Ticketmaster-compatible API",
            config=None,
            examples=("simulate --port 8765 --change-every 5s",),
        )
    )
    command(
        commands,
        "demo",
        _demo,
        "run the simulator and the daemon together",
        config=DEMO_CONFIG,
        examples=("demo",),
    )
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    command(
        db_commands,
        "upgrade",
        _db_upgrade,
        "apply migrations to the newest schema",
        examples=("db upgrade --config config/monitor.yaml",),
    )


def _duration(text: str) -> float:
    """A duration (`5s`, `1m`), or plain seconds as before."""
    try:
        return parse_duration(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a duration such as 5s, got {text!r}"
            ) from None


def _simulator_arguments(sim: argparse.ArgumentParser) -> None:
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--api-key", default="sim-key", help="the key it accepts (default: sim-key)")
    sim.add_argument("--seed", type=int, default=0, help="seed of the random status walk")
    sim.add_argument(
        "--change-every",
        type=_duration,
        default=None,
        metavar="DURATION",
        help="change one random event's status this often (e.g. 5s)",
    )
    sim.add_argument(
        "--rate", type=float, default=None, help="answer a spike arrest 429 above this many/s"
    )
    sim.add_argument(
        "--quota", type=int, default=None, help="answer a quota 429 after this many a window"
    )
    sim.add_argument(
        "--quota-window",
        type=_duration,
        default=86400.0,
        metavar="DURATION",
        help="how often the quota resets (default 1d; 1m stands a minute for a day)",
    )
    sim.add_argument("--latency", type=float, default=0.0, metavar="SECONDS")
    sim.add_argument(
        "--max-url-bytes",
        type=int,
        default=None,
        metavar="BYTES",
        help="answer 414 (URI Too Long) to longer request URLs, as a proxy would",
    )
    sim.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="answer this share of requests (0 to 1) with an HTML 503",
    )


def _run(args: argparse.Namespace) -> int:
    config = load(args.config)
    setup_logging(config.logging.level, config.logging.format)
    return run_until_stopped(lambda stop: _daemon(config, stop, args.config))


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
        # What start-up built (the libraries, the config, the watchlist) lives as long as the
        # process. Out of the collector's sight, it no longer costs every full collection a
        # walk over it: some 100 ms of CPU each at 100,000 events.
        gc.collect()
        gc.freeze()
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


def _simulate(args: argparse.Namespace) -> int:
    from monitor.devtools.simulator import Simulator, serve

    setup_logging()
    simulator = Simulator(
        api_key=args.api_key,
        seed=args.seed,
        change_every=args.change_every,
        rate=args.rate,
        quota=args.quota,
        quota_period=args.quota_window,
        latency=args.latency,
        max_url_bytes=args.max_url_bytes,
    )
    simulator.fault_rate = args.fault_rate

    async def body(stop: asyncio.Event) -> None:
        async with serve(simulator, args.host, args.port) as url:
            print(f"simulator listening on {url} (API key: {args.api_key})", flush=True)
            await stop.wait()

    return run_until_stopped(body)


def _demo(args: argparse.Namespace) -> int:
    from monitor.devtools.simulator import demo_simulator, serve

    config = load(args.config)
    setup_logging(config.logging.level, config.logging.format)
    upstream = urlsplit(config.ticketmaster.base_url)
    simulator = demo_simulator(config, datetime.now(UTC))

    async def body(stop: asyncio.Event) -> None:
        async with serve(simulator, upstream.hostname or "127.0.0.1", upstream.port or 80):
            print(
                f"demo: a simulated Ticketmaster API at {config.ticketmaster.base_url} changes "
                f"one of {len(config.events)} events every 3s; each change is logged below"
                + (
                    f" and shown at http://{config.server.host}:{config.server.port}/"
                    + ("?token=… (server.token)" if config.server.token else "")
                    if config.server.enabled
                    else ""
                )
                + ". Ctrl-C stops.",
                flush=True,
            )
            await _daemon(config, stop, args.config)

    return run_until_stopped(body)


def _db_upgrade(args: argparse.Namespace) -> int:
    from monitor.store.engine import create_engine, upgrade

    config = load(args.config)

    async def body() -> None:
        engine = create_engine(config.database.url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(body())
    print(f"database {redact(config.database.url)} is at the newest schema")
    return EXIT_OK
