"""Alembic, driven from the service: upgrade and downgrade.

Whether a database is current is answered without Alembic, in revision.py (re-exported here).
The connection is handed to Alembic's env.py (the cookbook's connection-sharing recipe), so the
same code runs from the CLI, from `serve` and from the tests, inside one event loop.
"""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from qa_mailer.db.revision import SchemaBehind, current_revision, head_revision, require_current
from qa_mailer.resources import migrations_dir

__all__ = [
    "SchemaBehind",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "require_current",
    "upgrade",
]


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """An Alembic config pointing at the shipped migrations, optionally bound to a connection."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    # Dated file names keep the folder in the order revisions were written.
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database up to ``revision``."""
    await _migrate(engine, lambda config: command.upgrade(config, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Take the database down to ``revision`` ("base" empties it)."""
    await _migrate(engine, lambda config: command.downgrade(config, revision))


async def _migrate(engine: AsyncEngine, step: Callable[[AlembicConfig], None]) -> None:
    async with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite changes a table by copying it and dropping the old one, which foreign
            # keys forbid while other tables point at its rows. SQLite's own procedure: keys
            # off (only possible outside a transaction), migrate, check, keys on again.
            await _foreign_keys(connection, on=False)
        try:
            async with connection.begin():
                await connection.run_sync(lambda sync: step(alembic_config(sync)))
                if sqlite:
                    broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                    if broken:
                        raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                await _foreign_keys(connection, on=True)


async def _foreign_keys(connection: AsyncConnection, *, on: bool) -> None:
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    await raw.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
