"""Table objects for SQLAlchemy Core. Alembic migrations are the only source of the schema;
these mirror them, and a test checks that the two agree.

Times are stored as Unix seconds (UTC) in floating-point columns: portable between SQLite
and PostgreSQL, exact enough, and cheap to compare and sort on the hot path.

An event's last-seen time is its batch's `last_polled_at` while `read_in_last_poll` is
true (an unchanged reading writes nothing per event); otherwise its own `last_seen_at`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants 64 bits for long-lived tables.
RowId = BigInteger().with_variant(Integer(), "sqlite")

batches = Table(
    "batches",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("interval_s", Float, nullable=False),
    Column("next_due_at", Float, nullable=False),
    Column("last_polled_at", Float),
    # Moves whenever the state of a member event is written, so a poller may cache states.
    Column("version", Integer, nullable=False),
    # Ticketing source and region ("ticketmaster/US"): a request never mixes two of them.
    Column("partition", String(64), nullable=False, server_default=""),
    # Failed polls in a row, for backoff; zero after a success.
    Column("failures", Integer, nullable=False, server_default="0"),
    # The replica polling the batch now; claims of a replica gone silent are released.
    Column("claimed_by", String(32)),
    # Member events: a request with room takes other batches along while they fit.
    Column("size", Integer, nullable=False, server_default="0"),
    # Its events are IDs Ticketmaster said it does not know: polled at their own slow
    # interval, never taken along by a request with room.
    Column("invalid", Boolean, nullable=False, server_default=false()),
    Index("ix_batches_due", "next_due_at"),
    Index("ix_batches_partition_due", "partition", "next_due_at"),
    # A watch added alone joins a batch of its key with room.
    Index("ix_batches_key", "partition", "interval_s", "size"),
)

events = Table(
    "events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("name", Text),
    # NULL while the event is not watched.
    Column("batch_id", String(32), ForeignKey("batches.id")),
    Column("status", String(32)),
    Column("resale_status", String(32)),
    Column("unknown_streak", Integer, nullable=False),
    Column("read_in_last_poll", Boolean, nullable=False),
    Column("first_seen_at", Float),
    Column("last_seen_at", Float),
    Column("last_changed_at", Float),
    Column("last_snapshot_at", Float),
    # The link the configuration gave (`url:`), and the market (region) it is sold in.
    Column("link", Text),
    Column("market", String(8)),
    # Why the last answer said UNKNOWN, as it said (`statusDetail`, `resaleStatusDetail`);
    # NULL while nothing the event is accepted at or read as is UNKNOWN.
    Column("status_detail", String(64)),
    Column("resale_status_detail", String(64)),
    Index("ix_events_batch", "batch_id"),
    Index("ix_events_status", "status", "event_id"),
)

# What the Discovery API said about an event when last asked; `found` is false when it
# did not know the event (it is polled all the same). Sales are JSON: [{kind, name,
# starts_at, ends_at}].
event_details = Table(
    "event_details",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("found", Boolean, nullable=False),
    Column("name", Text),
    Column("url", Text),
    Column("starts_at", Float),
    Column("local_date", String(10)),
    Column("timezone", String(64)),
    Column("venue_name", Text),
    Column("venue_city", Text),
    Column("venue_country", String(8)),
    Column("lifecycle", String(16)),
    Column("sales", Text),
    Column("price_low", Float),
    Column("price_high", Float),
    Column("price_currency", String(8)),
    Column("fetched_at", Float),
    Column("next_fetch_at", Float, nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),
    # Sale windows opening before this time have been announced; the next one opens then.
    Column("sales_seen_until", Float),
    Column("next_sale_at", Float),
    # The first sale opening whose burst of polls may not have ended (see `polling.bursts`).
    Column("burst_sale_at", Float),
    Index("ix_event_details_due", "next_fetch_at"),
    Index("ix_event_details_sale", "next_sale_at"),
    Index("ix_event_details_burst", "burst_sale_at"),
)

# Watches besides the configuration file's: events a `discover:` search found (origin
# "discover") or the API or CLI added ("api"), each with the settings it is watched with
# (JSON, as under `events:`); and a row for any watch, the file's own too ("config"),
# while it is paused or snoozed. `changed_at` moves with every write, so replicas notice.
watches = Table(
    "watches",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("origin", String(16), nullable=False),
    Column("search", String(64)),
    Column("settings", Text, nullable=False),
    Column("added_at", Float, nullable=False),
    Column("until", Float),
    Column("paused", Boolean, nullable=False, server_default=false()),
    Column("snoozed_until", Float),
    Column("changed_at", Float),
)

# Every write to a watch, by any process, in the order written: replicas follow it from the
# last entry they applied, one event at a time, instead of reading every watch again.
# AUTOINCREMENT on SQLite: a sequence number is never used twice, even after pruning.
watch_changes = Table(
    "watch_changes",
    metadata,
    Column("seq", RowId, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_watch_changes_at", "at"),
    sqlite_autoincrement=True,
)

# Every write to a watch through the API or the CLI: who, what, when.
audit = Table(
    "audit",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("who", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("detail", Text),
    Index("ix_audit_event", "event_id", "at"),
)

# When each `discover:` search runs next: replicas take turns, a restart keeps the pace.
searches = Table(
    "searches",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("next_run_at", Float, nullable=False),
    Column("last_run_at", Float),
    Column("last_matched", Integer),
    # A search followed at runtime (the API, the CLI, the dashboard), as a `discover:` entry
    # says it; NULL for the configuration file's own, which only keep their schedule here.
    Column("filters", Text),
    Column("added_at", Float),
    Column("added_by", String(64)),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("resale_status", String(32), nullable=False),
    Column("observed_at", Float, nullable=False),
    Index("ix_snapshots_event_time", "event_id", "observed_at"),
    Index("ix_snapshots_time", "observed_at"),
)

changes = Table(
    "changes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("event_name", Text),
    Column("previous_status", String(32)),
    Column("previous_resale_status", String(32)),
    Column("status", String(32), nullable=False),
    Column("resale_status", String(32), nullable=False),
    Column("observed_at", Float, nullable=False),
    # inventory, lifecycle or sale_opened. A change of another kind than inventory holds
    # the event's availability when it happened, and what happened as JSON in `detail`.
    Column("kind", String(16), nullable=False, server_default="inventory"),
    Column("detail", Text),
    Index("ix_changes_event_time", "event_id", "observed_at"),
    Index("ix_changes_time", "observed_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("change_id", String(36), ForeignKey("changes.id"), nullable=False),
    Column("notifier", String(64), nullable=False),
    # pending, delivered, dead, or superseded (a later change says it better, or nothing new).
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    # No second message about the same event to this notifier within this many seconds.
    Column("cooldown_s", Float, nullable=False),
    Column("urgent", Boolean, nullable=False, server_default=false()),
    Column("finished_at", Float),
    Column("last_error", Text),
    Index("ix_deliveries_due", "state", "next_attempt_at"),
    Index("ix_deliveries_change", "change_id"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("delivery_id", String(36), ForeignKey("deliveries.id"), nullable=False),
    Column("attempted_at", Float, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Index("ix_delivery_attempts_delivery", "delivery_id"),
)

# One row: how the Inventory Status API is doing, and what is left of the daily quota.
UPSTREAM = "ticketmaster"
"""The upstream row's name: the Inventory Status API, as every replica knows it."""

upstream = Table(
    "upstream",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("health", String(32), nullable=False),
    Column("since", Float),
    Column("paused_until", Float),
    Column("last_error", Text),
    Column("last_success_at", Float),
    Column("quota_limit", BigInteger),
    Column("quota_available", BigInteger),
    Column("quota_reset_at", Float),
)

# The most event IDs a request to each endpoint carries, as learnt (see `upstream.sizing`).
request_sizes = Table(
    "request_sizes",
    metadata,
    Column("endpoint", String(200), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("learnt_at", Float, nullable=False),
)

# Daemons sharing this database, each with the time it last said it was alive.
replicas = Table(
    "replicas",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("seen_at", Float, nullable=False),
)

# The cluster's request pacing (GCRA): the theoretical arrival time of the next request,
# and the requests left of the daily quota until it resets, as the replicas spend them.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("tat", Float, nullable=False),
    Column("quota_available", BigInteger),
    Column("quota_reset_at", Float),
)

# People sharing the watcher: `admin`s manage everything, `member`s their own things.
# Settings are JSON ({timezone, quiet_hours}). `changed_at` moves with every write to the
# user, their channels or settings, so replicas rebuild that user's routes alone.
users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(32), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", Text),
    Column("settings", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_at", Float, nullable=False),
    Column("changed_at", Float, nullable=False),
    # The digest of the key that opens the user's calendar feed (never their API token).
    Column("calendar_digest", String(64)),
    UniqueConstraint("name", name="uq_users_name"),
    Index("ix_users_changed", "changed_at"),
    Index("ix_users_calendar", "calendar_digest", unique=True),
)

# API tokens by their SHA-256 digest: a token is shown once and never stored.
user_tokens = Table(
    "user_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_id", String(32), ForeignKey("users.id"), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_user_tokens_user", "user_id"),
)

# Dashboard sessions of users signed in with a password, by the digest of the cookie's value.
sessions = Table(
    "sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("user_id", String(32), ForeignKey("users.id"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_sessions_user", "user_id"),
    Index("ix_sessions_expires", "expires_at"),
)

# Where a user hears of their shows: an Apprise URL, or a signed webhook with its secret.
channels = Table(
    "channels",
    metadata,
    Column("user_id", String(32), ForeignKey("users.id"), primary_key=True),
    Column("name", String(30), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", Text),
    Column("created_at", Float, nullable=False),
)

# A user following an event, with their settings (JSON: the event as given, `notify`,
# `when`, news, `interval`), pause and snooze. An event is polled once however many follow it.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("user_id", String(32), ForeignKey("users.id"), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("settings", Text, nullable=False),
    Column("paused", Boolean, nullable=False, server_default=false()),
    Column("snoozed_until", Float),
    Column("added_at", Float, nullable=False),
    # The user's search that found the event: such a subscription ends once it has started.
    Column("search", String(40)),
    Column("until", Float),
    Index("ix_subscriptions_event", "event_id"),
    Index("ix_subscriptions_until", "until"),
)

# A user's own searches: an artist, a venue or a keyword, with the filters of `discover:`
# (JSON); what they find becomes that user's subscriptions.
user_searches = Table(
    "user_searches",
    metadata,
    Column("user_id", String(32), ForeignKey("users.id"), primary_key=True),
    Column("name", String(40), primary_key=True),
    Column("filters", Text, nullable=False),
    Column("added_at", Float, nullable=False),
)
