"""`inventory-monitor user ...` next to a running daemon: the commands work on the database,
and the daemon follows them within a tick."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from monitor.devtools.simulator import Simulator, serve
from monitor.models import ResaleStatus, Status
from tests.conftest import API_KEY
from tests.e2e import ROOT, cli_command, daemon, daemon_config, receiver
from tests.support import eventually, free_port

OPERATOR = "user-cli-operator-token-41"


async def _user(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *cli_command("user", *args),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    out, err = await process.communicate(None if stdin is None else stdin.encode())
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_users_managed_from_the_command_line_next_to_a_running_daemon(
    tmp_path: Path,
) -> None:
    simulator = Simulator(api_key=API_KEY)
    simulator.set("E1", Status.TICKETS_NOT_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE)
    simulator.set("FOLLOWED1", Status.TICKETS_NOT_AVAILABLE, ResaleStatus.TICKETS_NOT_AVAILABLE)
    port = free_port()
    async with serve(simulator) as upstream, receiver() as hook:
        config = daemon_config(
            tmp_path / "monitor.yaml",
            upstream,
            [{"id": "E1"}],
            server={"port": port, "token": OPERATOR},
            users={"min_interval": "1s", "allow_private_targets": True},
        )
        c = ("--config", str(config))
        async with (
            daemon(config) as running,
            aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http,
        ):
            code, out, err = await _user("add", "alice", *c)
            assert code == 0, err
            first = out.splitlines()[-1]
            assert first.startswith("imu_"), "the last line is the token, alone"
            code, out, err = await _user(
                "add", "root", "--admin", "--password-stdin", *c, stdin="s3cret-pass\n"
            )
            assert code == 0, err
            code, _, err = await _user("add", "Alice", *c)
            assert code == 2
            assert "lower-case" in err
            assert "Traceback" not in err
            code, _, err = await _user("add", "alice", *c)
            assert code == 1
            assert "exists already" in err

            await eventually(_answers(http, "/healthz", {}, 200), within=15, what="the daemon")
            alice = {"Authorization": f"Bearer {first}"}
            async with http.post(
                "/api/me/channels",
                json={"name": "hook", "type": "webhook", "url": hook.url},
                headers=alice,
            ) as response:
                assert response.status == 201, await response.text()
            async with http.post(
                "/api/me/subscriptions", json={"id": "FOLLOWED1"}, headers=alice
            ) as response:
                assert response.status == 201, await response.text()
            await eventually(lambda: simulator.times_asked["FOLLOWED1"] >= 2, what="polled")
            simulator.set("FOLLOWED1", Status.TICKETS_AVAILABLE)
            await eventually(hook.received(1), what="alice's message")
            assert hook.bodies()[0]["data"]["subscriber"] == "alice"

            process = await asyncio.create_subprocess_exec(
                *cli_command("check", *c), cwd=ROOT, stdout=asyncio.subprocess.PIPE
            )
            checked = (await process.communicate())[0].decode()
            assert "user:      alice adds 432 requests a day" in checked, (
                "a 1s show: 86,400 polls, 200 a request"
            )

            code, out, err = await _user("token", "alice", *c)
            assert code == 0, err
            second = {"Authorization": f"Bearer {out.splitlines()[-1]}"}
            await eventually(_answers(http, "/api/me", alice, 401), what="the old token revoked")
            await eventually(_answers(http, "/api/me", second, 200), what="the new one works")

            assert (await _user("disable", "alice", *c))[0] == 0
            await eventually(_answers(http, "/api/me", second, 401), what="disabled")
            code, out, _ = await _user("list", "--json", *c)
            listed = {u["name"]: u for u in json.loads(out)}
            assert listed["alice"]["disabled"]
            assert listed["root"]["role"] == "admin"
            assert (await _user("enable", "alice", *c))[0] == 0
            code, _, err = await _user("passwd", "alice", "--password-stdin", *c, stdin="short\n")
            assert code == 2
            assert "password" in err

            assert (await _user("rm", "alice", *c))[0] == 0
            await eventually(
                lambda: "1 no longer watched" in running.log,
                within=15,  # the daemon looks for writes made elsewhere every 5 s
                what="the daemon to stop polling alice's show",
            )
            asked = simulator.times_asked["FOLLOWED1"]
            polls = simulator.requests
            await eventually(lambda: simulator.requests >= polls + 3, what="more polls")
            assert simulator.times_asked["FOLLOWED1"] <= asked + 1, "nobody follows it now"
            assert await running.stop() == 0
            assert "Traceback" not in running.log

    with sqlite3.connect(tmp_path / "monitor.db") as db:
        dump = "\n".join(db.iterdump())
    assert first not in dump, "tokens are stored as digests"
    assert "s3cret-pass" not in dump, "passwords are hashed"


def _answers(
    http: aiohttp.ClientSession, path: str, headers: dict[str, str], status: int
) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            async with http.get(path, headers=headers) as response:
                return response.status == status
        except aiohttp.ClientError:
            return False

    return check
