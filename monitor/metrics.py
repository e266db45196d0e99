"""Prometheus metrics: what the daemon counts as it works, and what it reads at scrape time.

Each Monitor has its own registry, so several can live in one process (as in the tests).
Labelled children on the hot path are bound once, not looked up per observation.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "inventory_monitor"


class Metrics:
    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry()
        self.polls = Counter(
            f"{PREFIX}_polls", "Batch polls by outcome (ok or failed).", ["outcome"],
            registry=registry,
        )  # fmt: skip
        self.polls_ok, self.polls_failed = self.polls.labels("ok"), self.polls.labels("failed")
        self.observations = Counter(
            f"{PREFIX}_observations",
            "Event readings by outcome: unchanged, updated (state written) or missing "
            "(left out of an answer).",
            ["outcome"],
            registry=registry,
        )
        self.unchanged = self.observations.labels("unchanged")
        self.updated = self.observations.labels("updated")
        self.missing = self.observations.labels("missing")
        self.request_seconds = Histogram(
            f"{PREFIX}_upstream_request_seconds",
            "Inventory Status API request latency, answered or not.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )
        self.rate_limited = Counter(
            f"{PREFIX}_rate_limited", "HTTP 429 answers by kind (spike_arrest or quota).",
            ["kind"], registry=registry,
        )  # fmt: skip
        self.quota_remaining = Gauge(
            f"{PREFIX}_quota_remaining",
            "Requests left in the daily quota, as the API last reported (-1: unknown).",
            registry=registry,
        )
        self.request_ids = Gauge(
            f"{PREFIX}_request_ids",
            "The most event IDs one request carries now, by endpoint (learnt unless pinned).",
            ["endpoint"],
            registry=registry,
        )
        self.changes = Counter(
            f"{PREFIX}_changes",
            "Changes by field (status or resale_status) and new state.",
            ["field", "state"],
            registry=registry,
        )
        self.deliveries = Counter(
            f"{PREFIX}_deliveries",
            "Delivery attempts by notifier and outcome (delivered, failed or dead).",
            ["notifier", "outcome"],
            registry=registry,
        )
        self.outbox_pending = Gauge(
            f"{PREFIX}_outbox_pending", "Deliveries waiting to be sent.", registry=registry
        )
        self.outbox_oldest_seconds = Gauge(
            f"{PREFIX}_outbox_oldest_pending_seconds",
            "Age of the oldest delivery waiting to be sent (0 when none waits).",
            registry=registry,
        )
        self.last_success = Gauge(
            f"{PREFIX}_last_successful_poll_timestamp_seconds",
            "When a poll last succeeded (Unix time; 0: never).",
            registry=registry,
        )
        self.watched = Gauge(f"{PREFIX}_watched_events", "Events watched.", registry=registry)
        self.user_requests = Gauge(
            f"{PREFIX}_user_requests_per_day",
            "Requests a day each user's subscriptions add beyond what is polled anyway.",
            ["user"],
            registry=registry,
        )
        self.upstream_health = Gauge(
            f"{PREFIX}_upstream_health",
            "1 for the upstream's current health (ok, degraded, quota_exhausted, "
            "invalid_api_key), 0 for the others.",
            ["health"],
            registry=registry,
        )
