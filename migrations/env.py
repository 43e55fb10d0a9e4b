"""Alembic environment (async template), able to run on a connection the service hands it."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import qa_mailer.db  # noqa: F401  (registers every model on the metadata)
from qa_mailer.config import load_config
from qa_mailer.db.base import Base

target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_config() -> None:
    config = load_config(os.environ.get("QA_MAILER_CONFIG", "config.toml"))
    engine = create_async_engine(config.database_url, poolclass=pool.NullPool)
    async with engine.begin() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
elif context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `qa-mailer db upgrade`")
else:
    asyncio.run(run_from_config())
