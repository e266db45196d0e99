"""The detection-delay benchmark: how soon after a status changes the daemon has it.

N events change status at random times (a Poisson process each; a tenth of them are "hot"
and change ten times as often) in a simulator that enforces a daily quota of Q requests,
with the day scaled down so that a run of `--day` seconds stands for a whole one. A real
daemon, fitting its intervals to that quota (`polling.fit_quota`), watches all N. For
every change, the delay is the time from the change to the daemon's reading of it; a
change reverted or overtaken before any poll saw it counts as never seen.

The same run measures the daemon three times: as configured before requests learnt their
size and took batches along (a pinned `batch_size: 100`), as it is now (`batch_size:
auto`), both fitting their intervals to the quota they are told, and, third, told nothing:
the simulator announces its quota and its reset in `Rate-Limit` headers, and the daemon
paces itself to last until each reset. The bound: with Q requests a day, B IDs per request
and N events, no event can be revisited more often than every N / (B * Q / day) seconds,
and half of that is the delay to expect at that pace.

In the first two, the scaled quota is enforced but not announced, because the daemon plans
by the real day: it is told the equivalent daily figure in `daily_quota`. The daemon may use
URLs up to 20,000 bytes here, so that requests of 1,000 IDs are possible. The figures are
chosen so that the quota binds, not the shortest interval (1 s): 10,000 events and 600
requests a 2-minute day revisit each event every 2 s at best.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yarl import URL

from bench.cluster import start_daemon, stop, write_config
from bench.polling import API_KEY
from monitor.devtools.simulator import Simulator, serve
from monitor.models import Status

STATUSES = (Status.TICKETS_AVAILABLE, Status.FEW_TICKETS_LEFT, Status.TICKETS_NOT_AVAILABLE)
API_MAX = 1000
SECONDS_PER_DAY = 86400.0
WARM_UP = 15.0
"""Seconds for the daemon to read every baseline, learn its request size and re-plan."""
RATE_WARM_UP = 60.0
"""Where the rate binds, seconds to learn the request size from the proxy's refusals at
2 requests a second: the delay measured is the steady state's."""
TAIL = 3.0
"""Seconds after the last change for the daemon to read it."""


class QuietQuotaSimulator(Simulator):
    """Enforces its scaled quota without announcing it (see the module's docstring)."""

    def quota_headers(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True, slots=True)
class Made:
    event_id: str
    at: float
    status: str


def schedule(
    ids: list[str], seconds: float, mean_gap: float, rng: random.Random
) -> list[tuple[float, str]]:
    """(offset, event) for every change in `seconds`: a tenth of the events are hot."""
    changes: list[tuple[float, str]] = []
    for index, event_id in enumerate(ids):
        gap = mean_gap / 10 if index % 10 == 0 else mean_gap
        at = rng.expovariate(1 / gap)
        while at < seconds:
            changes.append((at, event_id))
            at += rng.expovariate(1 / gap)
    return sorted(changes)


async def make_changes(
    simulator: Simulator, plan: list[tuple[float, str]], rng: random.Random
) -> list[Made]:
    made: list[Made] = []
    start = time.monotonic()
    for offset, event_id in plan:
        await asyncio.sleep(max(0.0, start + offset - time.monotonic()))
        current = simulator.current(event_id)[0]
        status = rng.choice([s for s in STATUSES if s is not current])
        simulator.set(event_id, status)
        made.append(Made(event_id, time.time(), status.value))
    return made


def delays(made: list[Made], database: Path) -> tuple[list[float], int]:
    """The delay of each change the daemon read, and how many it never saw."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT event_id, observed_at, status FROM changes "
            "WHERE previous_status IS NOT NULL ORDER BY observed_at"
        ).fetchall()
    seen: dict[str, list[tuple[float, str]]] = {}
    for event_id, observed_at, status in rows:
        seen.setdefault(event_id, []).append((observed_at, status))
    by_event: dict[str, list[Made]] = {}
    for change in made:
        by_event.setdefault(change.event_id, []).append(change)
    found: list[float] = []
    missed = 0
    for event_id, changes in by_event.items():
        readings = seen.get(event_id, [])
        for index, change in enumerate(changes):
            overtaken_at = changes[index + 1].at if index + 1 < len(changes) else float("inf")
            reading = next((r for r in readings if r[0] >= change.at), None)
            if reading is None or reading[0] >= overtaken_at or reading[1] != change.status:
                missed += 1
            else:
                found.append(reading[0] - change.at)
    return found, missed


@dataclass(frozen=True, slots=True)
class Scenario:
    """One daemon against one simulator: what the simulator enforces, what the daemon is told."""

    label: str
    events: int
    simulator: dict[str, Any]
    ticketmaster: dict[str, Any]
    fit_quota: bool = False
    quiet_quota: bool = False
    warm_up: float = WARM_UP
    log_level: str = "WARNING"
    discovery: bool = True
    """Whether event details are fetched, on the same rate and quota as polling."""


def quota_scenarios(args: argparse.Namespace) -> list[Scenario]:
    """The quota binds: as configured before requests learnt their size (`old`), as now
    (`new`), both told the quota, and told nothing (`paced`)."""
    quota = {"quota": args.quota, "quota_period": args.day}
    told = {
        "max_url_bytes": 20_000,
        "requests_per_second": 4 * args.quota / args.day,
        "daily_quota": int(args.quota * SECONDS_PER_DAY / args.day),
    }
    return [
        Scenario("old", args.events, quota, {**told, "batch_size": 100}, True, True),
        Scenario("new", args.events, quota, {**told, "batch_size": "auto"}, True, True),
        Scenario("paced", args.events, quota, {**told, "batch_size": "auto"}),
    ]


def rate_scenario(args: argparse.Namespace) -> Scenario:
    """The rate binds: requests a second, and a proxy refusing URLs over a length."""
    return Scenario(
        "rate",
        args.rate_events,
        {"rate": args.rate, "max_url_bytes": args.rate_url_bytes},
        {"requests_per_second": args.rate, "batch_size": "auto"},
        warm_up=RATE_WARM_UP,
        discovery=False,  # its requests would take polling's slots: the bound is polling's
    )


def most_ids(base_url: str, id_length: int, max_url_bytes: int) -> int:
    """B: the most IDs of `id_length` characters a URL of `max_url_bytes` holds."""
    endpoint = URL(f"{base_url}/inventory-status/v1/availability")
    fixed = len(str(endpoint.with_query(events="", apikey=API_KEY)))
    return min(API_MAX, (max_url_bytes - fixed + 1) // (id_length + 1))


async def measure(scenario: Scenario, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    ids = [f"G5v{index:06d}ZpCY3S" for index in range(scenario.events)]
    kind = QuietQuotaSimulator if scenario.quiet_quota else Simulator
    simulator = kind(api_key=API_KEY, **scenario.simulator)
    async with serve(simulator) as base:
        label = scenario.label
        database = workdir / f"{label}.db"
        document = {
            "ticketmaster": {"base_url": base, "api_key": API_KEY, **scenario.ticketmaster},
            "database": {"url": f"sqlite+aiosqlite:///{database}"},
            "discovery": {"enabled": scenario.discovery},
            "server": {"enabled": False},
            "polling": {"interval": "1s", "fit_quota": scenario.fit_quota},
            "logging": {"level": scenario.log_level},
            "events": [{"id": event_id} for event_id in ids],
        }
        daemon = start_daemon(write_config(workdir / f"{label}.json", document))
        try:
            await asyncio.sleep(scenario.warm_up)
            requests_before = simulator.requests
            plan = schedule(ids, args.day, args.mean_gap, rng)
            made = await make_changes(simulator, plan, rng)
            await asyncio.sleep(TAIL)
            requests = simulator.requests - requests_before
        finally:
            stop(daemon)
        url_bytes = scenario.simulator.get("max_url_bytes")
        most = API_MAX if url_bytes is None else most_ids(base, len(ids[0]), url_bytes)
    found, missed = delays(made, database)
    ordered = sorted(found)
    return {
        "events": scenario.events,
        "changes": len(made),
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95)] * 1000,
        "max_ms": ordered[-1] * 1000,
        "never_seen": missed / len(made),
        "requests": requests,
        "ids_per_request": most,
        "quota_refusals": simulator.quota_refusals,
        "spike_arrests": simulator.spike_arrests,
        "too_long": simulator.too_long,
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="monitor-detection-"))
    old, new, paced = [await measure(s, args, workdir) for s in quota_scenarios(args)]
    rate = await measure(rate_scenario(args), args, workdir)
    # Q requests a day of B IDs revisit N events every N / (B * Q / day) seconds at best;
    # R requests a second, every N / (B * R). Half of that is the delay to expect.
    quota_bound = args.events / (API_MAX * args.quota / args.day) / 2 * 1000
    rate_bound = args.rate_events / (rate["ids_per_request"] * args.rate) / 2 * 1000
    return {
        "events": args.events,
        "quota": args.quota,
        "day_s": args.day,
        "old": old,
        "new": new,
        "paced": paced,
        "bound_p50_ms": quota_bound,
        "new_vs_bound": new["p50_ms"] / quota_bound,
        "paced_vs_bound": paced["p50_ms"] / quota_bound,
        "old_vs_new": old["p50_ms"] / new["p50_ms"],
        "rate": rate,
        "rate_bound_p50_ms": rate_bound,
        "rate_vs_bound": rate["p50_ms"] / rate_bound,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--quota", type=int, default=600, help="requests a (scaled) day")
    parser.add_argument("--day", type=float, default=120.0, help="seconds that stand for a day")
    parser.add_argument(
        "--mean-gap", type=float, default=300.0, help="mean seconds between an event's changes"
    )
    parser.add_argument("--rate-events", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=2.0, help="requests a second allowed")
    parser.add_argument(
        "--rate-url-bytes", type=int, default=4_000, help="the longest URL a proxy lets through"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args))))


if __name__ == "__main__":
    main()
