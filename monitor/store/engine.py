"""Engine creation (SQLite pragmas, PostgreSQL pool) and migrations to the newest schema."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    event,
    insert,
    inspect,
)
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

import monitor
from monitor.errors import StoreError
from monitor.redact import redact
from monitor.store.inline import connector
from monitor.store.tables import UPSTREAM, metadata, upstream

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

logger = logging.getLogger(__name__)

HEAD_REVISION = "0017"
"""The newest migration. A database already there is not handed to Alembic at all, nor is an
empty one (see `_create_at_head`), which spares nearly every start the import of Alembic,
Mako and Pygments (some 11 MB)."""

_BUSY_TIMEOUT_MS = 30_000
_WAL_SIZE_LIMIT = 16 * 1024 * 1024
_MIGRATION_LOCK = 0x1D7E_4A11


_READ_ONLY = "monitor_read_only"


def reader(engine: AsyncEngine) -> AsyncEngine:
    """`engine` for read-only work: its transactions never wait for a writer on SQLite."""
    return engine.execution_options(**{_READ_ONLY: True})


class SerialWrites(AsyncEngine):
    """SQLite's engine: this process's writing transactions queue for the write lock here,
    in turn, rather than in SQLite's busy handler, which sleeps up to 100 ms between tries.
    Polls and API writes then share the lock fairly, and a burst of writes costs each one
    its own transaction, not its own back-off. Readers (see `reader`) are not held."""

    def __init__(self, sync_engine: Any) -> None:
        super().__init__(sync_engine)
        self._turn = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self._turn, super().begin() as conn:
            yield conn


def create_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE writes."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"database.url is not a database URL: {redact(url)!r}") from None
    if parsed.get_backend_name() != "sqlite":
        try:
            return create_async_engine(parsed, pool_pre_ping=True)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"database.url cannot be opened: {redact(str(exc))}") from None

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    args, kwargs = SQLiteDialect_aiosqlite().create_connect_args(parsed)
    creator = connector(args, {**kwargs, "timeout": _BUSY_TIMEOUT_MS / 1000})
    engine = SerialWrites(create_async_engine(parsed, async_creator=creator).sync_engine)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            f"busy_timeout={_BUSY_TIMEOUT_MS}",
            f"journal_size_limit={_WAL_SIZE_LIMIT}",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # A writing transaction takes the write lock up front: a deferred one that later
        # writes can fail with SQLITE_BUSY without waiting. A reading one stays deferred, so
        # in WAL mode it runs beside a writer instead of queueing behind it.
        # On the driver's connection: SQLAlchemy's statement path would cost more than the
        # statement, on every transaction.
        begin = "BEGIN" if connection.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE"
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(begin)
        finally:
            cursor.close()

    return engine


def migrations_dir() -> Path:
    """Where the Alembic scripts are: inside the installed package, or at the repository top."""
    package = Path(monitor.__file__).parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise StoreError("the database migrations are missing from this installation")


def alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; safe to run on every start."""

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Replicas starting together take turns: the first migrates, the rest find it done.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        before = current_revision(connection)
        if before == HEAD_REVISION:
            return
        if before is None and not inspect(connection).get_table_names():
            _create_at_head(connection)
            logger.info("database created at schema %s", HEAD_REVISION)
            return
        from alembic import command

        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        after = current_revision(connection)
        if after != before:
            logger.info("database schema upgraded from %s to %s", before or "empty", after)

    try:
        async with engine.begin() as connection:
            await connection.run_sync(run)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate the database: {database_reason(exc)}") from None
    except OSError as exc:
        raise StoreError(f"cannot migrate the database: {redact(str(exc))}") from None


def _create_at_head(connection: Connection) -> None:
    """An empty database built from the table objects and stamped with the newest revision,
    as Alembic's cookbook builds one from scratch: the first start then spares the import
    of Alembic, Mako and Pygments, some 11 MB that a daemon would carry for as long as it
    runs. The tests hold this to what the migrations build, rows included."""
    metadata.create_all(connection)
    connection.execute(insert(upstream).values(name=UPSTREAM, health="ok"))
    version = Table(
        "alembic_version",
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    version.create(connection)
    connection.execute(insert(version).values(version_num=HEAD_REVISION))


def current_revision(connection: Connection) -> str | None:
    """The schema's migration, as Alembic recorded it; None for an empty database."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    return None if revision is None else str(revision)


def database_reason(error: SQLAlchemyError) -> str:
    """What the database driver said, in one line, without the statement or its parameters."""
    cause = getattr(error, "orig", None) or error
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return redact(first)
