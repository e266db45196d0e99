"""`user`: the people who share the watcher. The commands work on the database directly,
like `watch`, so they work next to a running daemon, which follows within a tick.

`user add` prints the new user's API token on its last line, alone: a script can take it
with `tail -n 1`. A password is read from standard input (`--password-stdin`), never from
the command line, where other users of the machine and the shell's history would see it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

import orjson

from monitor.cli.common import (
    EXIT_OK,
    Commands,
    command,
    database,
    load,
    refused,
    table,
    when,
)
from monitor.errors import Refused
from monitor.store.accounts import Accounts, Role
from monitor.store.subscriptions import Subscriptions
from monitor.users import Users


def register(commands: Commands) -> None:
    user = commands.add_parser("user", help="manage the people who share the watcher")
    actions = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = command(
        actions,
        "add",
        _add,
        "create a user; the last line printed is their API token",
        examples=("user add alice", "printf '%s' \"$PASSWORD\" | user add bob --password-stdin"),
    )
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may manage everything and everyone")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read a password for the dashboard's sign-in from standard input",
    )
    listing = command(actions, "list", _list, "list the users", examples=("user list --json",))
    listing.add_argument("--json", action="store_true")
    token = command(
        actions,
        "token",
        _token,
        "issue a new API token; the earlier ones stop working",
        examples=("user token alice",),
    )
    token.add_argument("name")
    passwd = command(
        actions,
        "passwd",
        _passwd,
        "set a user's password, read from standard input",
        examples=("printf '%s' \"$PASSWORD\" | user passwd alice --password-stdin",),
    )
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", required=True)
    for name, handler, what in (
        ("disable", _disable, "stop a user signing in and hearing anything (their things stay)"),
        ("enable", _enable, "let a disabled user in again"),
        ("rm", _remove, "remove a user, their subscriptions and channels (history stays)"),
    ):
        sub = command(actions, name, handler, what, examples=(f"user {name} alice",))
        sub.add_argument("name")


def _run(args: argparse.Namespace, act: Callable[[Users], Awaitable[int]]) -> int:
    config = load(args.config)

    async def body() -> int:
        async with database(config) as engine:
            service = Users(Accounts(engine), Subscriptions(engine), time.time)
            try:
                return await act(service)
            except Refused as exc:
                return refused(f"user {args.action}", exc)

    return asyncio.run(body())


def _password(args: argparse.Namespace) -> str | None:
    """The password on standard input, without the newline `echo` adds."""
    if not args.password_stdin:
        return None
    return sys.stdin.read().rstrip("\r\n")


def _add(args: argparse.Namespace) -> int:
    password = _password(args)
    role = Role.ADMIN if args.admin else Role.MEMBER

    async def act(service: Users) -> int:
        user, token = await service.add(args.name, role, password)
        print(f"user {user.name} added ({user.role.value}); their API token, shown once:")
        print(token)
        return EXIT_OK

    return _run(args, act)


def _list(args: argparse.Namespace) -> int:
    async def act(service: Users) -> int:
        users = await service.list()
        if args.json:
            documents = [
                {
                    "name": u.name,
                    "role": u.role.value,
                    "disabled": u.disabled,
                    "created_at": when(u.created_at),
                }
                for u in users
            ]
            print(orjson.dumps(documents, option=orjson.OPT_INDENT_2).decode())
            return EXIT_OK
        if not users:
            print("no users yet: add one with `inventory-monitor user add NAME`")
            return EXIT_OK
        table(
            ("NAME", "ROLE", "DISABLED", "CREATED"),
            [
                (u.name, u.role.value, "yes" if u.disabled else "-", when(u.created_at))
                for u in users
            ],
        )
        return EXIT_OK

    return _run(args, act)


def _token(args: argparse.Namespace) -> int:
    async def act(service: Users) -> int:
        token = await service.new_token(args.name)
        print(f"a new API token for {args.name}, shown once; the earlier ones no longer work:")
        print(token)
        return EXIT_OK

    return _run(args, act)


def _passwd(args: argparse.Namespace) -> int:
    password = _password(args) or ""

    async def act(service: Users) -> int:
        await service.set_password(args.name, password)
        print(f"{args.name} has a new password")
        return EXIT_OK

    return _run(args, act)


def _disable(args: argparse.Namespace, *, disabled: bool = True) -> int:
    async def act(service: Users) -> int:
        await service.set_disabled(args.name, disabled)
        print(
            f"{args.name} is disabled: no sign-in, no messages; their things stay"
            if disabled
            else f"{args.name} is enabled again"
        )
        return EXIT_OK

    return _run(args, act)


def _enable(args: argparse.Namespace) -> int:
    return _disable(args, disabled=False)


def _remove(args: argparse.Namespace) -> int:
    async def act(service: Users) -> int:
        await service.remove(args.name)
        print(f"{args.name} is removed with their subscriptions and channels; history stays")
        return EXIT_OK

    return _run(args, act)
