"""Alembic, driven from the service: upgrade, downgrade, and "is this database current?".

The connection is handed to Alembic's env.py (the cookbook's connection-sharing recipe), so the
same code runs from the CLI, from `serve` and from the tests, inside one event loop.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.resources import migrations_dir


class SchemaBehind(Exception):
    """The database is not at the newest migration."""


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """An Alembic config pointing at the shipped migrations, optionally bound to a connection."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    # Dated file names keep the folder in the order revisions were written.
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database up to ``revision``."""
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Take the database down to ``revision`` ("base" empties it)."""
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for a database never upgraded."""
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def require_current(engine: AsyncEngine) -> None:
    """Raise SchemaBehind, saying which command fixes it, unless the database is at head."""
    current, head = await current_revision(engine), head_revision()
    if current != head:
        where = engine.url.render_as_string(hide_password=True)
        state = (
            "has no tables yet"
            if current is None
            else f"is at revision {current}, the code needs {head}"
        )
        raise SchemaBehind(f"the database {where} {state}: run `qa-mailer db upgrade`")
