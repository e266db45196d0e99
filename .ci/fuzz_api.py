"""Schemathesis against the real daemon's HTTP API, as its OpenAPI document describes it.

Starts the simulator and a daemon (on a fresh PostgreSQL database, where a NUL in a query
once became a 500), runs every schemathesis check with its default settings, with the bearer
token, once for each of two random seeds (printed first, so that a failure can be run again
with FUZZ_SEEDS), then as a member on `/api/me` with the same seeds, and exits with the
first failing run's code. `make fuzz-api` runs it; so does CI.

Every check includes `positive_data_acceptance`: a request the document calls valid must not
be refused. So the document states every rule the API enforces, as a pattern or a range.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench.cluster import postgres_database, simulator, start_daemon, stop, write_config
from bench.polling import API_KEY, free_port

TOKEN = "schemathesis-token-0123456789"  # noqa: S105 - a throw-away daemon's token
SECONDS = os.environ.get("FUZZ_SECONDS", "40")
SEEDS = os.environ.get("FUZZ_SEEDS", f"{random.randrange(10**6)},{random.randrange(10**6)}")


def wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - a local URL we built
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _member_token(base: str) -> str:
    """A member made through the API, with a channel, as a fan would start."""
    request = urllib.request.Request(  # noqa: S310 - a local URL we built
        f"{base}/api/users",
        data=json.dumps({"name": "fan"}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        token = str(json.load(answer)["token"])
    channel = urllib.request.Request(  # noqa: S310 - a local URL we built
        f"{base}/api/me/channels",
        data=json.dumps({"name": "phone", "url": "ntfy://ntfy.example.org/fan"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    urllib.request.urlopen(channel, timeout=10).close()  # noqa: S310
    return token


async def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="monitor-fuzz-"))
    async with postgres_database() as database:
        with simulator() as upstream:
            port = free_port()
            config = write_config(
                workdir / "fuzz.json",
                {
                    "ticketmaster": {"base_url": upstream, "api_key": API_KEY},
                    "database": {"url": database},
                    "server": {"port": port, "token": TOKEN},
                    "polling": {"interval": "2s"},
                    "logging": {"level": "WARNING"},
                    "notifiers": {"console": {"type": "log"}},
                    # Members' channels are not looked up in DNS: no network here.
                    "users": {"min_interval": "1s", "allow_private_targets": True},
                    "events": [{"id": "E1", "name": "Show one"}, {"id": "E2"}, {"id": "E3"}],
                },
            )
            daemon = start_daemon(config)
            try:
                base = f"http://127.0.0.1:{port}"
                wait_until_up(f"{base}/healthz")
                runs: list[tuple[str, Callable[[], str], tuple[str, ...]]] = [
                    ("the operator", lambda: TOKEN, ()),
                    # A member's token opens /api/me alone: fuzzed there, where it may write.
                    # Made after the operator's runs, which may remove any user.
                    ("a member", lambda: _member_token(base), ("--include-path-regex", "^/api/me")),
                ]
                for who, token_of, only in runs:
                    token = token_of()
                    for seed in SEEDS.split(","):
                        print(
                            f"schemathesis as {who}, seed {seed} (FUZZ_SEEDS={seed} runs it again)",
                            flush=True,
                        )
                        command = [
                            *(sys.executable, "-m", "schemathesis.cli"),
                            *("--config-file", str(Path(__file__).with_name("schemathesis.toml"))),
                            *("run", f"{base}/api/openapi.json", *only),
                            # One worker: on Python 3.11, hypothesis describing a filter in two
                            # threads at once trips CPython's "AST constructor recursion depth
                            # mismatch", a runtime error in the fuzzer, not in the API.
                            *("--checks", "all", "--workers", "1", "--max-time", SECONDS),
                            *("--seed", seed, "-H", f"Authorization: Bearer {token}"),
                        ]
                        schemathesis = await asyncio.create_subprocess_exec(*command)
                        code = await schemathesis.wait()
                        if code:
                            return code
                return 0
            finally:
                stop(daemon)


if __name__ == "__main__":
    print(json.dumps({"fuzz_seconds": SECONDS, "seeds": SEEDS}))
    sys.exit(asyncio.run(main()))
