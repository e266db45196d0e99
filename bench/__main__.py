"""`make bench`: runs each benchmark in its own process and prints one table per benchmark."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def run(module: str, *args: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"{module} failed")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def heading(columns: tuple[str, ...]) -> None:
    """A Markdown table's header row and rule."""
    print(" | ".join(columns))
    print(" | ".join("-" * len(column) for column in columns))


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 10_000])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--rate-minutes", type=float, default=10.0)
    args = parser.parse_args()

    print(
        "Polling cost: the daemon's whole process (`inventory-monitor run`, SQLite) in steady "
        "state against a stand-in API, the median of 5 s windows, and the floor (a bare "
        "aiohttp fetch-and-parse loop at the same request size) run before and after it"
    )
    header = (
        "events",
        "request size",
        "IDs a request",
        "daemon ms CPU / 1,000 obs",
        "floor ms",
        "ratio (target: at most 2.5)",
        "peak RSS MB (target: at most 150)",
    )
    heading(header)
    for count in args.events:
        for batch in ("auto", "100"):
            figures = run("bench.process", "--events", str(count), "--batch", batch)
            print(
                f"{count:,} | {batch} | {figures['ids_per_request']} | "
                f"{figures['daemon_ms_per_1000']:.2f} | {figures['floor_ms_per_1000']:.2f} | "
                f"{figures['ratio']:.2f} | {figures['rss_mb']:.0f}",
                flush=True,
            )

    print()
    print(
        "Writes: 20,000 watches added through POST /api/watches by 4 clients while the daemon "
        "(its own process, SQLite) polls 1,000 events every 10 s"
    )
    writes_header = (
        "watches added",
        "seconds (target: at most 60)",
        "POST p50 ms",
        "p99 ms",
        "longest gap between polls s (interval 10)",
        "all polled",
    )
    heading(writes_header)
    figures = run("bench.writes")
    print(
        f"{figures['adds']:,} | {figures['seconds']:.1f} | {figures['p50_ms']:.1f} | "
        f"{figures['p99_ms']:.1f} | {figures['longest_gap_s']:.2f} | {figures['all_polled']}",
        flush=True,
    )

    print()
    print(
        "Shared by fans: 1,000 users following 20 shows each over 2,000 distinct events, one "
        "of them followed by 500; the daemon in its own process (SQLite), polling every 10 s"
    )
    accounts_header = (
        "requests a day",
        "for 2,000 events",
        "for 20,000 separately",
        "500 deliveries enqueued after the poll p50 ms (target: within 1,000)",
        "max ms",
    )
    heading(accounts_header)
    figures = run("bench.accounts")
    p50, longest = float(str(figures["enqueue_p50_s"])), float(str(figures["enqueue_max_s"]))
    print(
        f"{figures['requests_per_day']:,.0f} | {figures['plan_distinct_per_day']:,.0f} | "
        f"{figures['plan_separately_per_day']:,.0f} | {p50 * 1000:.0f} | {longest * 1000:.0f}",
        flush=True,
    )

    print()
    print(
        "Detection delay: 10,000 events changing at random (a tenth ten times as often), "
        "600 requests a day with 2 minutes standing for a day; a real daemon fitting its "
        "intervals to the quota it is told, or pacing itself to the quota's headers"
    )
    detection_header = ("daemon", "p50 ms", "p95 ms", "max ms", "never seen", "requests")
    heading(detection_header)
    figures = run("bench.detection")
    for label, what in (
        ("old", "fixed 100-ID requests"),
        ("new", "learnt size, riders"),
        ("paced", "paced to the announced quota and reset"),
    ):
        row = figures[label]
        assert isinstance(row, dict)
        print(
            f"{what} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['max_ms']:.1f} | "
            f"{row['never_seen']:.2%} | {row['requests']:,}",
            flush=True,
        )
    print(
        f"bound (1,000 IDs a request, every request of the quota) | {figures['bound_p50_ms']:.1f}"
    )
    print(
        f"new / bound: {figures['new_vs_bound']:.2f} (target: at most 1.3); "
        f"paced / bound: {figures['paced_vs_bound']:.2f} (target: at most 1.2); "
        f"old / new: {figures['old_vs_new']:.1f} (target: at least 3)",
        flush=True,
    )
    rate = figures["rate"]
    assert isinstance(rate, dict)
    print()
    print(
        f"Detection delay where the rate binds: {rate['events']:,} events, "
        "2 requests a second, URLs refused over 4,000 bytes"
    )
    heading(detection_header)
    print(
        f"learnt size, rate-bound | {rate['p50_ms']:.1f} | {rate['p95_ms']:.1f} | "
        f"{rate['max_ms']:.1f} | {rate['never_seen']:.2%} | {rate['requests']:,}"
    )
    print(
        f"bound N/(B·R)/2 with B = {rate['ids_per_request']} IDs | "
        f"{figures['rate_bound_p50_ms']:.1f}"
    )
    print(
        f"rate-bound / bound: {figures['rate_vs_bound']:.2f} (target: at most 1.1); "
        f"{rate['spike_arrests']} spike arrests, {rate['too_long']} URLs refused",
        flush=True,
    )

    print()
    print(
        "Discovery: the details of 1,000 watched events (a tenth legacy IDs with links) and "
        "a discover: search every 6h, a day of it against the simulator's Discovery API"
    )
    discovery_header = (
        "Discovery requests a day",
        "planned",
        "share of 5,000 (target: at most 10%)",
    )
    heading(discovery_header)
    figures = run("bench.discovery")
    print(
        f"{figures['requests_per_day']:,} | {figures['planned_per_day']:,} | "
        f"{figures['share_of_quota']:.1%}",
        flush=True,
    )

    print()
    print("Delivery: a mass on-sale to a local webhook receiver (own process), concurrency 4")
    delivery_header = ("changes at once", "all delivered s", "single change p50 ms", "p99 ms")
    heading(delivery_header)
    figures = run("bench.delivery", "--events", str(args.changes))
    print(
        f"{figures['wave_delivered']:,} | {figures['wave_s']:.2f} | "
        f"{figures['latency_p50_ms']:.0f} | {figures['latency_p99_ms']:.0f}",
        flush=True,
    )

    print()
    print(
        "MQTT: changes through the outbox to the local Mosquitto at QoS 1, counted by a subscriber"
    )
    mqtt_header = ("changes", "all received s (target: at most 10)")
    heading(mqtt_header)
    figures = run("bench.mqtt")
    print(f"{figures['messages']:,} | {figures['seconds']:.2f}", flush=True)

    print()
    print(
        "API: GET /api/events (first page, by cursor, by status) with the server in its own process"
    )
    api_header = ("watched events", "requests", "p50 ms", "p99 ms")
    heading(api_header)
    figures = run("bench.api")
    print(
        f"{figures['events']:,} | {figures['requests']} | {figures['p50_ms']:.1f} | "
        f"{figures['p99_ms']:.1f}",
        flush=True,
    )

    print()
    print(
        "Rate limit: daemons against a simulator allowing 5 requests/s; 5,000 events "
        f"asking for 10/s, {args.rate_minutes:g} minutes (1: SQLite; 3: replicas on PostgreSQL)"
    )
    rate_header = ("replicas", "requests", "spike-arrest 429s", "share of the allowed rate used")
    heading(rate_header)
    for replicas in (1, 3):
        figures = run(
            "bench.ratelimit", "--minutes", str(args.rate_minutes), "--replicas", str(replicas)
        )
        print(
            f"{replicas} | {figures['requests']:,} | {figures['spike_arrests']} | "
            f"{figures['rate_used']:.1%}",
            flush=True,
        )

    print()
    print("Failover: how much later than its interval (10 s) the worst-served event was polled")
    failover_header = ("after a kill -9 of", "late by s (target: at most 10)")
    heading(failover_header)
    for mode, what in (("single", "the only daemon, restarted"), ("replicas", "1 of 3 replicas")):
        figures = run("bench.failover", "--mode", mode)
        print(f"{what} | {figures['late_s']:.1f}", flush=True)


if __name__ == "__main__":
    main()
