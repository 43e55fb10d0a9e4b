"""Engine and session factory for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SessionFactory = async_sessionmaker[AsyncSession]

# How long a command waits for the database to answer before saying it cannot reach it.
REACH_TIMEOUT_SECONDS = 10.0


class DatabaseUnreachable(Exception):
    """The configured database does not answer: the message names it, without its password."""


def describe(url: str) -> str:
    """The database URL as it may be shown: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


async def reach(engine: AsyncEngine, timeout: float = REACH_TIMEOUT_SECONDS) -> None:
    """Connect once and ask the database for nothing; raise DatabaseUnreachable if it fails.

    Commands call this first so that a database that is down, a wrong host or a SQLite file
    that cannot be opened is reported as what it is, in one line, and not as a traceback or
    as a fault of whatever the command tried next (such as the SMTP listener).
    """
    try:
        async with asyncio.timeout(timeout), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except TimeoutError:
        raise DatabaseUnreachable(
            f"cannot reach the database {describe(str(engine.url))}: no answer within {timeout:g} s"
        ) from None
    except (OSError, SQLAlchemyError) as exc:
        raise DatabaseUnreachable(
            f"cannot reach the database {describe(str(engine.url))}: {_reason(exc)}"
        ) from None


def _reason(exc: BaseException) -> str:
    # SQLAlchemy wraps the driver's error and appends its statement and a link; the driver's
    # own first line is what a person needs.
    original = getattr(exc, "orig", None) or exc
    reason = str(original).strip().splitlines()[0] if str(original).strip() else ""
    return reason or type(original).__name__


def create_engine(url: str) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL, foreign keys and one writer at a time.

    Statement parameters are left out of errors: a failed insert would otherwise put reply
    tokens and addresses into the reason of a quarantined message and into the log.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnreachable(
                    f"cannot make the folder of the SQLite database {database}: "
                    f"{exc.strerror or exc}"
                ) from None
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    engine = create_async_engine(url, pool_pre_ping=True, hide_parameters=True)
    # Rows inserted together (a batch's questions, its outbox mails) reach PostgreSQL as one
    # INSERT holding every row, as SQLAlchemy already sends an INSERT ... RETURNING. Left
    # alone, asyncpg sends one execution per row, which the server runs as a statement of its
    # own (its executor started, its statement triggers fired): bench/bench_process.py
    # measured the server's CPU time per question 0.37-0.39 ms that way, 0.31-0.33 ms this way.
    engine.sync_engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


def session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep loaded objects usable after commit (no lazy refresh in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def one_writer_at_a_time(sessions: SessionFactory) -> bool:
    """Whether each transaction of these sessions waits for the one before to end (SQLite:
    every transaction takes the write lock when it begins, see _sqlite_begin)."""
    engine = sessions.kw["bind"]
    return bool(engine.dialect.name == "sqlite")


# Bytes in a page of a new SQLite database (see _sqlite_connect).
PAGE_SIZE = 16384


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers go on while one process writes; NORMAL is durable across application
    # crashes in WAL mode; foreign keys are off by default in SQLite. The driver's own
    # transaction handling is switched off: _sqlite_begin opens every transaction instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # A new database file gets pages of 16 KB, not 4 KB: a question's mails (2-6 KB each) fit
    # in a page instead of spilling into overflow pages, and a batch's commit writes fewer,
    # larger frames to the WAL (bench/bench_process.py: SQLite's thread 110 -> 87 us of CPU
    # per question). The size is fixed when the first table is made, so the pragma does
    # nothing to a database that has any: that one keeps its size (see the README).
    cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")
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
