"""The streaming YAML loader gives what `yaml.safe_load` gives, without its node graph."""

from __future__ import annotations

import datetime
import subprocess
import sys
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import streaming


@pytest.mark.unit
@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("# only a comment\n", id="comment"),
        pytest.param("a: 1\nb: [x, 2.5, true, null, ~]\n", id="scalars"),
        pytest.param("when: 2026-11-27\nat: 2026-11-27T20:00:00Z\n", id="timestamps"),
        pytest.param("n: 0x1F\no: 0o17\nf: .inf\ns: '007'\nt: !!str 5\n", id="tags and bases"),
        pytest.param("base: &b {x: 1, y: 2}\nuse: *b\n", id="alias"),
        pytest.param(
            "one: &a {x: 1, y: 1}\ntwo: &b {y: 2, z: 2}\nboth:\n  <<: [*a, *b]\n  z: 3\n",
            id="merge keys: the first source wins, own keys win",
        ),
        pytest.param("d: &d {k: v}\ne:\n  <<: *d\n", id="merge one mapping"),
        pytest.param("text: |\n  two\n  lines\n", id="block scalar"),
        pytest.param("- a\n- - b\n  - c\n- {d: e}\n", id="nested"),
        pytest.param("? [1, 2]\n: x\n", id="a sequence as key is refused"),
        pytest.param("a: *nowhere\n", id="an undefined alias is refused"),
        pytest.param("a: 1\n---\nb: 2\n", id="two documents are refused"),
        pytest.param("a: [1, 2\n", id="broken syntax is refused"),
        pytest.param("a:\n  <<: 5\n", id="merging a scalar is refused"),
    ],
)
def test_as_safe_load(text: str) -> None:
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        with pytest.raises(type(exc)):
            streaming.load(text)
        return
    assert streaming.load(text) == expected


@pytest.mark.unit
def test_aliases_share_one_value_as_in_pyyaml() -> None:
    loaded = streaming.load("base: &b [1]\nuse: *b\n")
    assert loaded["use"] is loaded["base"]


@pytest.mark.unit
def test_the_error_says_where() -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        streaming.load("a: 1\nb: [1, 2\n")
    assert getattr(caught.value, "problem_mark", None) is not None


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.dates(),
    st.datetimes(timezones=st.just(datetime.UTC)),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=10), children, max_size=5),
    ),
    max_leaves=30,
)


@pytest.mark.unit
@settings(max_examples=200, deadline=None)
@given(documents, st.sampled_from([False, True]))
def test_any_document_loads_as_with_safe_load(document: Any, flow: bool) -> None:
    text = yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True)
    assert streaming.load(text) == yaml.safe_load(text)


def test_a_large_watchlist_costs_little_more_than_its_values() -> None:
    probe = (
        "import resource, yaml\n"
        "from monitor.config import streaming\n"
        "text = 'events:\\n' + ''.join(f'- id: E{i:07d}\\n' for i in range(100000))\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "loaded = streaming.load(text)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    grown_kb = int(subprocess.check_output([sys.executable, "-c", probe], text=True))
    # 100,000 one-key mappings are about 25 MB as values; PyYAML's graph adds over 100 MB.
    assert grown_kb < 50 * 1024, f"{grown_kb / 1024:.0f} MB"
