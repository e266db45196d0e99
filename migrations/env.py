"""Alembic environment: runs on the connection the monitor hands over, or on a URL of its own."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection

from monitor.store.engine import create_engine
from monitor.store.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(
        _run_standalone(
            os.environ.get("MONITOR_DATABASE_URL", "sqlite+aiosqlite:///data/monitor.db")
        )
    )
