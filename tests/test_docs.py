"""The documentation's examples work as printed: every command in a block marked
`<!-- docs-test: against the demo -->` is run against the demo's simulated API and a
database of its own, as a person with `make demo` running would run it."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from monitor.config import load_config
from monitor.devtools.simulator import demo_simulator, serve
from tests.e2e import ROOT, run_cli

MARK = "<!-- docs-test: against the demo -->"
BLOCK = re.compile(re.escape(MARK) + r"\n```sh\n(.*?)\n```", re.DOTALL)
CLI = ".venv/bin/inventory-monitor"
DEMO = "config/demo.yaml"


def commands() -> list[str]:
    found: list[str] = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for block in BLOCK.findall(page.read_text()):
            found.extend(line for line in block.splitlines() if line.strip())
    return found


@pytest.mark.unit
def test_the_docs_have_commands_to_try_against_the_demo() -> None:
    assert len(commands()) >= 5
    assert all(line.startswith(CLI) and DEMO in line for line in commands())


@pytest.mark.parametrize("line", commands())
async def test_a_documented_command_works_against_the_demo(line: str, tmp_path: Path) -> None:
    demo = load_config(ROOT / DEMO)
    async with serve(demo_simulator(demo, datetime.now(UTC))) as upstream:
        data = yaml.safe_load((ROOT / DEMO).read_text())
        data["ticketmaster"]["base_url"] = upstream
        data["database"]["url"] = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
        config = tmp_path / "demo.yaml"
        config.write_text(yaml.safe_dump(data, allow_unicode=True))
        words = [str(config) if word == DEMO else word for word in shlex.split(line)[1:]]
        code, out, err = await run_cli(*words)
    assert code == 0, err
    assert out.strip(), "it says something"
    if words[0] == "find":
        assert re.search(r"\b[1-9]\d* of \d+ matching events? shown", out), out
