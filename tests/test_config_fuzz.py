"""Whatever a config file holds, `check` answers with exit 0, or exit 2 and lines that each
name the file: never a traceback, never a hang, and never a value from the environment."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.cli.main import main

pytestmark = pytest.mark.unit

EXAMPLE = (Path(__file__).parent.parent / "config/monitor.example.yaml").read_bytes()
HOSTILE = [
    b"9" * 5000,
    b"1" * 400 + b"s",
    b"&a [x, x] ",
    b"*a",
    b"\xff\xfe",
    b"${",
    b"[" * 2000,
    b"{" + b"k" * 2000 + b": 1}",
    b"-1e400",
    b"!!python/object:os.system",
    b"\x00",
    b": :",
    b"&c [*c]",
    b"&m {k: *m}",
    b":99999",
    b":99999999999999999999",
    b"[::1",
    b"${FUZZ_SECRET}",
    b"'${FUZZ_SECRET}'",
    b"://u:${FUZZ_SECRET}@",
    b"x${FUZZ_SECRET}",
]
SECRET = "fuzz-s3cret-7Qx"
BOMB = b"""ticketmaster: {api_key: abcdefgh}
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
"""


def check(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(out),
        mock.patch.dict(os.environ, {"FUZZ_SECRET": SECRET}),
    ):
        code = main(["check", "--config", str(path)])
    return code, out.getvalue(), err.getvalue()


def assert_clean(code: int, out: str, err: str, path: Path) -> None:
    assert code in (0, 2), err
    assert SECRET not in out + err, "a value from the environment is never shown"
    assert "Traceback" not in err
    if code == 2:
        lines = err.splitlines()
        assert lines, "a refusal says why"
        assert all(line.startswith(str(path)) for line in lines), err


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(EXAMPLE)),
            st.integers(min_value=0, max_value=40),
            st.one_of(st.sampled_from(HOSTILE), st.binary(max_size=12)),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_a_mutated_config_is_valid_or_refused_in_lines(
    tmp_path_factory: pytest.TempPathFactory, mutations: list[tuple[int, int, bytes]]
) -> None:
    data = EXAMPLE
    for at, cut, insert in mutations:
        data = data[:at] + insert + data[at + cut :]
    path = tmp_path_factory.mktemp("fuzz") / "monitor.yaml"
    path.write_bytes(data)
    assert_clean(*check(path), path)


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_bytes(BOMB)
    code, _, err = check(path)
    assert code == 2
    assert "expands to over 10,000,000 values" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "events: &e [{id: X, name: *e}]",
            "2: invalid YAML: the alias *e refers to its own anchor",
        ),
        ("polling: &p {x: *p}", "2: invalid YAML: the alias *p refers to its own anchor"),
        (
            "database: {url: 'postgresql+asyncpg://u@h:99999/d'}",
            "2: database.url: the port must be a number up to 65535 in "
            "'postgresql+asyncpg://***@h:99999/d'",
        ),
        (
            "database: {url: 'postgresql+asyncpg://h:99999999999999999999/d'}",
            "2: database.url: the port must be a number up to 65535 in "
            "'postgresql+asyncpg://h:99999999999999999999/d'",
        ),
        (
            "notifiers: {m: {type: mqtt, url: 'mqtt://[::1'}}",
            "2: notifiers.m.url: invalid IPv6 URL in 'mqtt://[::1'",
        ),
    ],
)
def test_cycles_and_impossible_urls_are_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(f"ticketmaster: {{api_key: abcdefgh}}\n{text}\nevents: [{{id: X}}]\n")
    code, _, err = check(path)
    assert (code, err) == (2, f"{path}:{expected}\n")
