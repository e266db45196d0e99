"""A value taken from the environment is named by its variable in every config error, never
shown: such values are mostly secrets, and config errors reach terminals and logs."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from monitor.cli.main import main
from monitor.config import load_config
from monitor.errors import ConfigError

pytestmark = pytest.mark.unit

SECRET = "s3cr3t-Zq81-value"
HEAD = "ticketmaster: {api_key: abcdefgh}\n"
EVENTS = "events: [{id: E1}]\n"
WEBHOOK = "notifiers: {w: {type: webhook, url: 'http://127.0.0.1:9/x', %s}}\n"

CASES = {
    "a duration": "ticketmaster: {api_key: abcdefgh, timeout: '${SECRET}'}\n" + EVENTS,
    "an interval": HEAD + "polling: {interval: '${SECRET}'}\n" + EVENTS,
    "a number": HEAD + "ticketmaster: {api_key: k, batch_size: '${SECRET}'}\n" + EVENTS,
    "a base URL": "ticketmaster: {api_key: abcdefgh, base_url: '${SECRET}'}\n" + EVENTS,
    "a base URL's password": (
        "ticketmaster: {api_key: abcdefgh, base_url: 'https://u:${SECRET}@h:99999'}\n" + EVENTS
    ),
    "a database port": (
        HEAD + "database: {url: 'postgresql+asyncpg://u:${SECRET}@localhost:99999/d'}\n" + EVENTS
    ),
    "a database driver": (
        HEAD + "database: {url: 'postgresql://u:${SECRET}@localhost/d'}\n" + EVENTS
    ),
    "a database scheme": HEAD + "database: {url: '${SECRET}'}\n" + EVENTS,
    "an MQTT URL": (
        HEAD + "notifiers: {m: {type: mqtt, url: 'mqtt://u:${SECRET}@[broken'}}\n" + EVENTS
    ),
    "an MQTT port": (
        HEAD + "notifiers: {m: {type: mqtt, url: 'mqtt://u:${SECRET}@h:70000'}}\n" + EVENTS
    ),
    "a webhook URL": HEAD + "notifiers: {w: {type: webhook, url: '${SECRET}'}}\n" + EVENTS,
    "a webhook secret": HEAD + WEBHOOK % "secret: '${SECRET}'" + EVENTS,
    "a webhook timeout": HEAD + WEBHOOK % "timeout: '${SECRET}'" + EVENTS,
    "an email port": (
        HEAD
        + "notifiers: {e: {type: email, host: h, from: a@b.c, to: [d@e.f], port: '${SECRET}'}}\n"
        + EVENTS
    ),
    "an Apprise URL": HEAD + "notifiers: {a: {type: apprise, urls: ['${SECRET}']}}\n" + EVENTS,
    "an Apprise service": (
        HEAD + "notifiers: {a: {type: apprise, urls: ['nosuch://${SECRET}']}}\n" + EVENTS
    ),
    "a heartbeat URL": HEAD + "alerts: {heartbeat_url: 'ftp://${SECRET}'}\n" + EVENTS,
    "a server port": HEAD + "server: {port: '${SECRET}'}\n" + EVENTS,
    "an end date": HEAD + "events: [{id: E1, until: '${SECRET}'}]\n",
    "an unknown key": HEAD + "polling: {interval: 10s, nosuch: '${SECRET}'}\n" + EVENTS,
    "a section of the wrong type": HEAD + "polling: '${SECRET}'\n" + EVENTS,
}


def run(args: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_no_config_error_shows_a_value_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    monkeypatch.setenv("SECRET", SECRET)
    path = tmp_path / "monitor.yaml"
    path.write_text(text)

    with pytest.raises(ConfigError) as caught:
        load_config(path)
    code, output = run(["check", "--config", str(path)])
    run_code, run_output = run(["run", "--config", str(path)])

    assert code == run_code == 2, output + run_output
    for shown in (str(caught.value), output, run_output, caplog.text):
        assert SECRET not in shown
        assert SECRET[:8] not in shown, "not even a part of it"
    assert all(line.startswith(f"{path}:") for line in output.splitlines()), output


def test_the_variable_is_named_where_its_value_would_be(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(CASES["a duration"])
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"SECRET": SECRET})
    assert caught.value.problems == [
        f"{path}:1: ticketmaster.timeout: invalid duration '${{SECRET}}': "
        "use a number with s, m, h or d, e.g. 2h"
    ]


def test_a_short_value_is_named_where_quoted_and_words_stay_whole(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(HEAD + "polling: {interval: '${WHEN}'}\n" + EVENTS)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {"WHEN": "in"})
    (problem,) = caught.value.problems
    assert "invalid duration '${WHEN}'" in problem
    assert "use a number with s, m, h or d" in problem, "the message stays whole"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+asyncpg://u:pw@h:99999/d", "'postgresql+asyncpg://***@h:99999/d'"),
        ("postgresql+asyncpg://u@h:x/d", "'postgresql+asyncpg://***@h:x/d'"),
        ("postgresql://u:pw@h/d", "write postgresql+asyncpg://***@h/d"),
    ],
)
def test_url_errors_mask_the_user_info(url: str, shown: str, tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(HEAD + f"database: {{url: '{url}'}}\n" + EVENTS)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    (problem,) = caught.value.problems
    assert shown in problem
    assert ":pw@" not in problem
