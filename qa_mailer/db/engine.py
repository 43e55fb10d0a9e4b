"""Engine and session factory for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL, foreign keys and one writer at a time.

    Statement parameters are left out of errors: a failed insert would otherwise put reply
    tokens and addresses into the reason of a quarantined message and into the log.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(url, pool_pre_ping=True, hide_parameters=True)


def session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep loaded objects usable after commit (no lazy refresh in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while one process writes; NORMAL is durable across application
    # crashes in WAL mode; foreign keys are off by default in SQLite. The driver's own
    # transaction handling is switched off: _sqlite_begin opens every transaction instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # Every transaction takes the write lock when it starts (waiting up to the busy timeout),
    # not at its first write: two processes that read, then write, would otherwise both read
    # the same unclaimed rows, and the second would fail at once with "database is locked"
    # instead of waiting. One writer at a time is how claims work on SQLite.
    connection.exec_driver_sql("BEGIN IMMEDIATE")
