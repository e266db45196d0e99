"""SQLite run on the event loop's own thread, behind the interface aiosqlite gives.

aiosqlite sends every call (a cursor, a statement, a fetch, a commit) to a thread of its
own and back: a handful of thread switches per statement, which cost far more than the
statement itself. A claim or a poll's write is a few statements of microseconds each, so the
daemon spent most of its polling CPU on those switches. Here each call runs at once, where
it is made. SQLAlchemy's aiosqlite dialect drives this connection through its
`async_creator` hook, so everything above the driver stays as it is.

What this gives up: a statement blocks the event loop while it runs. In WAL mode readers
never wait, and this process's writers queue in `engine.SerialWrites` before they take the
write lock, so the only wait is for another process holding that lock (the CLI writing a
watch): milliseconds, bounded by the busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any


class _Cursor:
    """An aiosqlite cursor's coroutines over a sqlite3 cursor."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Cursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> _Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _AtOnce:
    """The dialect sets `isolation_level` by queueing a function for aiosqlite's thread and
    awaiting its future: here the function runs as it is queued."""

    __slots__ = ()

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed to the awaiting caller, as aiosqlite does
            future.set_exception(exc)


class InlineConnection:
    """An aiosqlite connection's interface over a sqlite3 connection used in place."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection
        """None once closed: the dialect checks it before a commit or a rollback."""
        self._tx = _AtOnce()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def connector(args: Sequence[Any], kwargs: dict[str, Any]) -> Callable[[], Any]:
    """The `async_creator` for a SQLite database: a connection used on the loop's thread,
    opened with the arguments the dialect makes of the URL (a `file:` URI and its query)."""

    async def connect() -> InlineConnection:
        # check_same_thread: the pool may close a connection from the thread that
        # garbage-collects it.
        return InlineConnection(sqlite3.connect(*args, **{**kwargs, "check_same_thread": False}))

    return connect
