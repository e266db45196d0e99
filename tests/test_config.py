from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import Config, load_config, parse_config
from monitor.errors import ConfigError
from monitor.models import Status
from monitor.redact import Redactor
from monitor.times import format_duration, in_seconds, next_poll, parse_duration, to_next_beat
from tests.conftest import ConfigFactory

pytestmark = pytest.mark.unit

GOOD = """\
ticketmaster:
  api_key: ${TM_API_KEY}
  batch_size: 50
polling:
  interval: 30s
notifiers:
  ops:
    type: webhook
    url: https://hooks.example.com/tickets
  console:
    type: log
events:
  - id: vvG1zZ9pCY3Sp3
    name: Eras Tour — Night 1
    interval: 1.5s
    notify: [ops]
  - id: 17AOv8G6G5rI0S0
"""


def second_event(entry: str) -> str:
    """The good config with its second event's line replaced by `entry`."""
    return GOOD.replace("  - id: 17AOv8G6G5rI0S0", entry)


MAIL = {"type": "email", "host": "127.0.0.1", "from": "a@example.com", "to": ["b@example.com"]}


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "monitor.yaml", {"TM_API_KEY": "k" * 8} if env is None else env)
    return caught.value.problems


def test_a_good_config_loads_with_defaults_and_interpolation() -> None:
    config = parse_config(GOOD, "monitor.yaml", {"TM_API_KEY": "secret-key-1"})
    assert config.ticketmaster.api_key.get_secret_value() == "secret-key-1"
    assert config.ticketmaster.base_url == "https://app.ticketmaster.com"
    assert config.ticketmaster.timeout == 10.0
    assert config.database.url == "sqlite+aiosqlite:///data/monitor.db"
    first, second = config.events
    assert config.interval_of(first) == 1.5
    assert config.interval_of(second) == 30.0
    assert config.targets_of(first) == ("ops",)
    assert config.targets_of(second) == ("ops", "console")
    assert "secret-key-1" not in repr(config)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("ticketmaster: [a, b\n", "monitor.yaml:2: invalid YAML", id="yaml-syntax"),
        pytest.param(
            GOOD.replace("  batch_size: 50", "  batch_size: 50\n  colour: red"),
            "monitor.yaml:4: ticketmaster.colour: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            GOOD.replace("batch_size: 50", "batch_size: lots"),
            "monitor.yaml:3: ticketmaster.batch_size: give a number of IDs from 1 to 1000, or auto "
            "(got 'lots')",
            id="wrong-type",
        ),
        pytest.param(
            GOOD.replace("batch_size: 50", "batch_size: 5000"),
            "ticketmaster.batch_size: give a number of IDs from 1 to 1000, or auto (got 5000)",
            id="batch-too-large",
        ),
        pytest.param(
            GOOD.replace("interval: 1.5s", "interval: ten seconds"),
            "monitor.yaml:15: events[0].interval: invalid duration 'ten seconds'",
            id="bad-duration",
        ),
        pytest.param(
            GOOD.replace("interval: 1.5s", "interval: 30"),
            "events[0].interval: invalid duration 30 (add a unit",
            id="duration-without-unit",
        ),
        pytest.param(
            GOOD.replace("interval: 30s", "interval: 0s"),
            "polling.interval: invalid duration '0s' (it must be longer than zero)",
            id="zero-duration",
        ),
        pytest.param(
            GOOD.replace("notify: [ops]", "notify: [ops, pager]"),
            "monitor.yaml:16: events[0].notify[1]: "
            "no notifier is named 'pager' (known: console, ops)",
            id="unknown-notifier",
        ),
        pytest.param(
            GOOD.replace("17AOv8G6G5rI0S0", "vvG1zZ9pCY3Sp3"),
            "monitor.yaml:17: events[1].id: "
            "duplicate event ID 'vvG1zZ9pCY3Sp3' (already at events[0])",
            id="duplicate-id",
        ),
        pytest.param(
            GOOD.replace("type: webhook", "type: pigeon"),
            "notifiers.ops: unknown notifier type 'pigeon'",
            id="unknown-notifier-type",
        ),
        pytest.param(
            GOOD.replace("https://hooks.example.com/tickets", "hooks.example.com"),
            "monitor.yaml:9: notifiers.ops.url: expected an http(s) URL",
            id="bad-webhook-url",
        ),
        pytest.param(
            second_event("  - id: 'a,b'"),
            "events[1].id: 'a,b' is not an event ID: expected a universal ID",
            id="comma-in-event-id",
        ),
        pytest.param(
            second_event("  - {id: E9, until: '0001-01-01T00:00:00Z'}"),
            "events[1].until: expected a date from 2000 to 2100, got 0001-01-01",
            id="date-out-of-range",
        ),
        pytest.param(
            second_event('  - {id: E9, name: "a\\0b"}'),
            "events[1].name: string should match pattern",
            id="control-character-in-name",
        ),
        pytest.param(
            second_event(f"  - {{id: E9, tags: {list(range(21))}}}"),
            "events[1].tags: tuple should have at most 20 items after validation, not 21",
            id="too-many-tags",
        ),
        pytest.param(
            second_event(f"  - {{id: E9, tags: [{'t' * 41}]}}"),
            "events[1].tags[0]: string should have at most 40 characters",
            id="long-tag",
        ),
        pytest.param(
            second_event("  - {id: E9, interval: 1ms}"),
            "events[1].interval: an interval is at least 1s, got 1ms",
            id="interval-under-a-second",
        ),
        pytest.param(
            GOOD + "polling: {interval: 1m}\n",
            "invalid YAML: the key 'polling' is given twice",
            id="doubled-key",
        ),
        pytest.param("events: []\n", "ticketmaster: required key is missing", id="missing-section"),
        pytest.param("- just\n- a list\n", "expected a mapping of sections", id="not-a-mapping"),
    ],
)
def test_bad_configs_are_refused_with_file_line_and_key_path(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in problem for problem in found), found
    assert all(problem.startswith("monitor.yaml:") for problem in found)


def test_a_missing_variable_without_default_is_named_with_its_key() -> None:
    assert problems(GOOD, env={}) == [
        "monitor.yaml:2: ticketmaster.api_key: environment variable ${TM_API_KEY} "
        "is not set (and has no default)"
    ]


def test_defaults_and_escapes_in_interpolation() -> None:
    text = GOOD.replace("batch_size: 50", "batch_size: ${BATCH:-25}").replace(
        "name: Eras Tour — Night 1", "name: Costs $$5 ($${NOT_A_VARIABLE})"
    )
    config = parse_config(text, "monitor.yaml", {"TM_API_KEY": "abcdefgh"})
    assert config.ticketmaster.batch_size == 25
    assert config.events[0].name == "Costs $5 (${NOT_A_VARIABLE})"


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("name: Eras Tour — Night 1", "name: Show ${TM_API_KEY}", "events[0].name"),
        ("    notify: [ops]", '    tags: ["${TM_API_KEY}"]', "events[0].tags[0]"),
        ("  - id: 17AOv8G6G5rI0S0", "  - id: ${TM_API_KEY}", "events[1].id"),
        ("    type: log", "    type: log\n    body: ${TM_API_KEY}", "notifiers.console.body"),
    ],
)
def test_variables_are_refused_in_text_that_is_shown_or_stored(
    old: str, new: str, where: str
) -> None:
    assert old in GOOD
    (problem,) = problems(GOOD.replace(old, new, 1))
    assert f"{where}: ${{TM_API_KEY}}: environment variables are replaced only in settings" in (
        problem
    )
    assert "k" * 8 not in problem


def test_every_problem_is_reported_at_once() -> None:
    text = GOOD.replace("batch_size: 50", "batch_size: 0").replace("interval: 30s", "interval: x")
    assert len(problems(text)) == 2


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "absent.yaml")


def test_polling_rules_per_event_load_with_their_aliases_and_defaults() -> None:
    text = GOOD.replace(
        "  - id: 17AOv8G6G5rI0S0\n",
        "  - id: 17AOv8G6G5rI0S0\n"
        "    source: TicketWeb\n"
        "    market: gb\n"
        "    priority: 3\n"
        "    until: 2026-12-01T19:30:00\n"
        "    interval_by_status: {FEW_TICKETS_LEFT: 15s, TICKETS_NOT_AVAILABLE: 5m}\n",
    )
    first, second = parse_config(text, "monitor.yaml", {"TM_API_KEY": "abcdefgh"}).events
    assert (second.source, second.region, second.priority) == ("ticketweb", "GB", 3)
    assert second.until is not None
    assert second.until.isoformat() == "2026-12-01T19:30:00+00:00"
    assert dict(second.interval_by_status or {}) == {
        Status.FEW_TICKETS_LEFT: 15.0,
        Status.TICKETS_NOT_AVAILABLE: 300.0,
    }
    assert Config.partition_of(second) == "ticketweb/GB"
    assert Config.partition_of(first) == ""
    assert (first.priority, first.until) == (1, None)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("    region: XX\n", "events[1].region: expected one of AT, AU"),
        ("    source: eventbrite\n", "events[1].source: expected one of ticketmaster, tmr"),
        ("    priority: 11\n", "events[1].priority: input should be less than or equal to 10"),
        ("    interval_by_status: {SOLD_OUT: 1m}\n", "events[1].interval_by_status.SOLD_OUT"),
        (
            "    until: next week\n",
            "events[1].until: expected a date-time such as 2026-12-01T19:30:00+01:00",
        ),
    ],
)
def test_bad_polling_rules_name_the_event_and_key(line: str, expected: str) -> None:
    text = GOOD.replace("  - id: 17AOv8G6G5rI0S0\n", "  - id: 17AOv8G6G5rI0S0\n" + line)
    (problem,) = problems(text)
    assert problem.startswith("monitor.yaml:18: "), problem
    assert expected in problem, problem


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("1.5s", 1.5),
        ("250ms", 0.25),
        ("1h30m", 5400),
        (" 2d ", 172800),
        ("2w", 14 * 86400),
        ("2y", 2 * 365 * 86400),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("due_at", "polling_now", "said"),
    [
        (None, False, "not scheduled"),
        (1000.0, False, "due now"),
        (990.0, False, "due now"),
        (1007.2, False, "in 8s"),
        (1000.0 + 3600 * 1.5, False, "in 1h30m"),
        (1050.0, True, "now"),
    ],
)
def test_when_an_event_is_polled_next(due_at: float | None, polling_now: bool, said: str) -> None:
    assert next_poll(due_at, 1000.0, polling_now=polling_now) == said


@pytest.mark.parametrize(
    "text",
    ["", "10", "ten seconds", "-5s", "5 parsecs", "0m", "s", "9" * 400 + "s", "101y", "1e9s"],
)
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@given(st.floats(min_value=1e-9, max_value=100 * 365 * 86400, allow_nan=False))
def test_a_duration_written_out_is_read_back_exactly(seconds: float) -> None:
    """What the daemon writes (a watch's settings, an export) is taken back as it was, be it
    long (`192909223.2s`, never `1.92909e+08s`) or short."""
    assert parse_duration(format_duration(seconds)) == seconds
    assert parse_duration(in_seconds(seconds)) == seconds


def test_the_example_and_demo_configs_are_valid() -> None:
    root = Path(__file__).parent.parent
    demo = parse_config((root / "config/demo.yaml").read_text(), "demo.yaml", {})
    example = parse_config(
        (root / "config/monitor.example.yaml").read_text(),
        "monitor.example.yaml",
        {"TM_API_KEY": "abcdefgh", "WEBHOOK_SECRET": "whsec_" + "QUJDREVGR0hJSktMTU5PUA=="},
    )
    for config in (demo, example):
        assert config.events, "something to watch"
        assert config.notifiers, "someone to tell"


ALL = "0.0.0.0"  # noqa: S104 - the address a container's server listens on


def test_docker_compose_passes_every_variable_the_example_config_uses() -> None:
    """The example config works as shipped in the container: each `${VAR}` it reads comes
    from `.env` through compose, and the image's own `MONITOR_HOST` opens the server to
    the published port."""
    root = Path(__file__).parent.parent
    text = (root / "config/monitor.example.yaml").read_text()
    lines = [line.split("#", 1)[0] for line in text.splitlines()]  # not the comments' ${VAR}
    used = set(re.findall(r"\$\{([A-Z_]+)", "\n".join(lines)))
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    passed = set(compose["services"]["monitor"]["environment"])
    listed = {
        line.split("=", 1)[0]
        for line in (root / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    image = {"MONITOR_HOST"}  # set in the Dockerfile
    assert used - image <= passed, f"compose does not pass {sorted(used - image - passed)}"
    assert used - image <= listed, f".env.example does not list {sorted(used - image - listed)}"
    assert "ENV" in (root / "Dockerfile").read_text()
    assert "MONITOR_HOST=0.0.0.0" in (root / "Dockerfile").read_text()
    inside = parse_config(
        (root / "config/monitor.example.yaml").read_text(),
        "monitor.example.yaml",
        {"TM_API_KEY": "abcdefgh", "MONITOR_TOKEN": "a-token-of-16-chars", "MONITOR_HOST": ALL},
    )
    assert inside.server.host == ALL
    assert inside.server.token is not None
    assert "mosquitto" in compose["services"], "the MQTT example has its broker"


def test_every_secret_is_known_to_the_redactor() -> None:
    text = (
        GOOD
        + """\
  - id: X1
"""
    )
    text = text.replace(
        "  console:\n    type: log\n",
        "  console:\n    type: log\n"
        "  mail:\n    type: email\n    host: smtp.example.com\n    from: a@example.com\n"
        "    to: [b@example.com]\n    password: smtp-pass-123\n"
        "  chat:\n    type: apprise\n    urls: ['discord://123/discord-token-xyz']\n",
    ).replace(
        "url: https://hooks.example.com/tickets",
        "url: https://hooks.example.com/tickets?token=hook-token-1\n"
        "    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    text += (
        "server: {token: dashboard-token-77}\n"
        "alerts: {heartbeat_url: 'https://hc-ping.com/0b7e-ping-uuid'}\n"
    )
    config = parse_config(text, "monitor.yaml", {"TM_API_KEY": "tm-key-123"})
    redact = Redactor(config.secrets())
    line = (
        "tm-key-123 smtp-pass-123 discord://123/discord-token-xyz "
        "https://hooks.example.com/tickets?token=hook-token-1 "
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw dashboard-token-77 "
        "https://hc-ping.com/0b7e-ping-uuid"
    )
    masked = redact(line)
    secrets = (
        "tm-key-123",
        "smtp-pass-123",
        "discord-token-xyz",
        "hook-token-1",
        "whsec_",
        "dashboard-token-77",
        "0b7e-ping-uuid",
    )
    for secret in secrets:
        assert secret not in masked


def test_a_json_config_loads_like_yaml_and_its_mistakes_keep_their_lines() -> None:
    document = {
        "ticketmaster": {"api_key": "${TM_API_KEY}"},
        "events": [{"id": "E1", "interval": "30s"}, {"id": "E2", "market": "gb"}],
    }
    text = json.dumps(document, indent=2)
    config = parse_config(text, "monitor.json", {"TM_API_KEY": "abcdefgh"})
    assert [(e.id, config.interval_of(e), e.region) for e in config.events] == [
        ("E1", 30.0, None),
        ("E2", 60.0, "GB"),
    ]
    broken = text.replace('"30s"', '"soon"')
    with pytest.raises(ConfigError) as caught:
        parse_config(broken, "monitor.json", {"TM_API_KEY": "abcdefgh"})
    (problem,) = caught.value.problems
    assert problem.startswith("monitor.json:8: events[0].interval: invalid duration 'soon'")
    with pytest.raises(ConfigError, match=r"monitor.json:\d+: invalid YAML"):
        parse_config(text[:-3], "monitor.json", {})


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        pytest.param(
            {"ticketmaster": {"api_key": "abc"}},
            "ticketmaster.api_key: a secret needs at least 4 characters",
            id="short api key",
        ),
        pytest.param(
            {"database": {"url": "postgresql+asyncpg://me:pw@127.0.0.1/db"}},
            "database.url: a secret needs at least 4 characters",
            id="short database password",
        ),
        pytest.param(
            {"server": {"host": "0.0.0.0", "token": "short-token"}},  # noqa: S104
            "server.token: a token guarding a server reachable from other machines needs at "
            "least 16 characters",
            id="short token on a reachable host",
        ),
        pytest.param(
            {"notifiers": {"mail": {**MAIL, "security": "none", "password": "hunter22"}}},
            "notifiers.mail.password: with security: none the password would cross the network",
            id="plain-text password",
        ),
    ],
)
def test_secrets_that_cannot_be_kept_are_refused(
    make_config: ConfigFactory, sections: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_config(**sections)
    (problem,) = caught.value.problems
    assert expected in problem


def test_plain_text_auth_when_asked_for(make_config: ConfigFactory) -> None:
    mail = {**MAIL, "security": "none", "password": "hunter22", "allow_plaintext_auth": True}
    config = make_config(notifiers={"mail": mail})
    assert "hunter22" in config.secrets()


@pytest.mark.parametrize(
    ("every", "now", "wait"),
    [
        (5.0, 100.0, 5.0),
        (5.0, 101.0, 4.0),
        (5.0, 104.5, 0.5),
        (10.0, 101.0, 9.0),
        (2.5, 101.0, 1.5),
    ],
)
def test_periodic_work_waits_for_the_shared_beat(every: float, now: float, wait: float) -> None:
    """Jobs of 5 s and 10 s, and the 2.5 s file check, meet on the same beats."""
    assert to_next_beat(every, now) == pytest.approx(wait)
