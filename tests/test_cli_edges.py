"""The command line at its edges: pipes, durations, names instead of IDs, help, completion."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.cli.history import _upstream_line, moment
from monitor.cli.main import main, parser
from monitor.models import Availability, Change, Quota, UpstreamStatus
from monitor.polling.watchlist import Watch
from monitor.store.engine import create_engine, upgrade
from monitor.store.records import PollWrite
from monitor.store.repository import Repository
from tests.e2e import ROOT, cli_command, run_cli
from tests.support import RN, A, N
from tests.test_cli import write_config


async def seeded(tmp_path: Path, changes: int = 0) -> Path:
    """A config whose database watches three shows, two of them with similar names."""
    config = write_config(tmp_path, "http://127.0.0.1:9/hook")
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
    await upgrade(engine)
    repository = Repository(engine)
    shows = [
        Watch("E1", "Eras Tour — Night 1", 60.0),
        Watch("E2", "Eras Tour — Night 2", 60.0),
        Watch("E3", "Hamilton", 60.0),
    ]
    await repository.sync_watchlist(shows, 100, time.time(), lambda: f"b{time.monotonic_ns()}")
    now = time.time()
    write = PollWrite(
        changes=[
            Change(f"c{i}", "E3", "Hamilton", Availability(N, RN), Availability(A, RN), now - i)
            for i in range(changes)
        ]
    )
    await repository.save_poll(write)
    await engine.dispose()
    return config


async def test_piping_into_head_ends_quietly(tmp_path: Path) -> None:
    config = await seeded(tmp_path, changes=20_000)
    command = " ".join(cli_command("export", "--config", str(config))) + " | head -1"
    process = await asyncio.create_subprocess_shell(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await process.communicate()
    assert out.decode().startswith("observed_at,event_id,event_name")
    assert err == b"", err.decode()


async def test_export_takes_a_duration_as_well_as_a_time(tmp_path: Path) -> None:
    config = await seeded(tmp_path, changes=3)
    code, out, err = await run_cli("export", "--since", "1h", "--config", str(config))
    assert code == 0, err
    assert len(out.splitlines()) == 4, "the header and three changes"
    code, _, err = await run_cli("export", "--since", "lately", "--config", str(config))
    assert code == 2
    assert "expected a duration such as 1h or 7d, or an ISO 8601 date-time" in err


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h", 1_800_000_000.0 - 3600),
        ("7d", 1_800_000_000.0 - 7 * 86400),
        ("2027-01-15T08:00:00Z", 1_800_000_000.0),
        ("2027-01-15T08:00:00", 1_800_000_000.0),
        ("soon", None),
    ],
)
def test_a_moment_is_a_duration_ago_or_a_date_time(text: str, expected: float | None) -> None:
    assert moment(text, 1_800_000_000.0) == expected


def test_history_takes_a_name_and_lists_an_ambiguous_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(asyncio.run(seeded(tmp_path)))

    def history(wanted: str) -> tuple[int, str, str]:
        code = main(["history", wanted, "--config", config])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, err = history("hamilton")
    assert code == 0, err
    assert out.startswith("Hamilton (E3)")
    code, out, _ = history("Eras Tour — Night 2")
    assert (code, out.splitlines()[0]) == (0, "Eras Tour — Night 2 (E2)")
    code, _, err = history("eras")
    assert code == 1
    assert "2 events match 'eras'; name one by its ID:" in err
    assert "E1  Eras Tour — Night 1" in err
    code, _, err = history("Oasis")
    assert (code, err.strip()) == (1, "no event with the ID or name 'Oasis' is in the database")


async def test_status_says_no_poll_yet_before_the_first(tmp_path: Path) -> None:
    config = str(await seeded(tmp_path))
    code, out, err = await run_cli("status", "--config", config)
    assert code == 0, err
    assert out.splitlines()[0] == "upstream: no poll yet"


@pytest.mark.unit
def test_every_command_ends_its_help_with_examples() -> None:
    for path, help_text in helps(parser()).items():
        if path and path not in ("db", "notify", "watch", "user"):  # groups of commands
            assert "examples:\n  inventory-monitor " in help_text, path


def helps(command: argparse.ArgumentParser, path: str = "") -> dict[str, str]:
    found = {path: command.format_help()}
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(helps(sub, f"{path} {name}".strip()))
    return found


async def test_shell_completion_comes_from_the_parser(tmp_path: Path) -> None:
    code, script, _ = await run_cli("completion", "bash")
    assert code == 0
    (tmp_path / "completion.bash").write_text(script)
    probe = (
        f"source {tmp_path / 'completion.bash'}\n"
        "COMP_WORDS=(inventory-monitor deliveries --config x.yaml ''); COMP_CWORD=4\n"
        "_inventory_monitor; echo ${COMPREPLY[@]}\n"
        "COMP_WORDS=(inventory-monitor exp); COMP_CWORD=1\n"
        "_inventory_monitor; echo ${COMPREPLY[@]}\n"
    )
    bash = await asyncio.create_subprocess_exec(
        "bash", "-c", probe, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, _ = await bash.communicate()
    deliveries, export = out.decode().splitlines()
    assert set(deliveries.split()) == {"--help", "--config", "--dead", "--limit", "retry"}
    assert export == "export"
    for shell in ("zsh", "fish"):
        code, script, _ = await run_cli("completion", shell)
        assert code == 0
        assert "strict" in script, shell


@pytest.mark.unit
def test_the_cli_entry_point_is_the_module_main() -> None:
    assert cli_command("x")[:3] == [sys.executable, "-m", "monitor"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("available", "reset_in", "says"),
    [
        (600, 60.0, None),  # ten a second: the rate, not the quota, paces
        (30, 60.0, "paced to one request every 2s so that it lasts until the reset"),
        (2, 180.0, "paced to one request every 1m30s so that it lasts until the reset"),
        (0, 90.0, None),  # nothing left: held until the reset, which the line says already
        (30, -5.0, None),  # the reset has passed: a new quota, not yet known
    ],
)
def test_status_says_when_the_quota_paces_requests(
    available: int, reset_in: float, says: str | None
) -> None:
    now = 1_800_000_000.0
    status = UpstreamStatus(
        last_success_at=now, quota=Quota(600, available, reset_at=now + reset_in)
    )
    line = _upstream_line(status, now, rate=5.0)
    assert (says in line) if says else ("paced" not in line), line
