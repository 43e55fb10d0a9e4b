"""Waking this process's stages when another process commits work for them.

Within one process, stages wake each other with asyncio events. Across processes (a second
`serve`, an organiser's command) the database tells: on PostgreSQL, triggers NOTIFY the channel
``qa_mailer`` with the table name when messages or outgoing mail arrive (see migration 0002),
and a dedicated connection LISTENs; on SQLite, ``PRAGMA data_version`` on one connection changes
whenever any other connection commits, and is read a few times a second. Either way the woken
stage then claims what is there, so a spurious wakeup costs one cheap query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.backoff import Backoff, wait_or_stop

log = logging.getLogger("qa_mailer.wakeups")

CHANNEL = "qa_mailer"
SQLITE_POLL_SECONDS = 0.25
# How often the PostgreSQL listener checks that its connection is still there.
LISTEN_CHECK_SECONDS = 5.0

# Called with what changed: "messages", "outbox", or "*" when the database cannot say.
OnChange = Callable[[str], None]


async def listen(engine: AsyncEngine, on_change: OnChange, stop: asyncio.Event) -> None:
    """Call ``on_change`` whenever another connection commits work, until ``stop``."""
    if engine.dialect.name == "postgresql":
        await _listen_postgresql(engine, on_change, stop)
    else:
        await _poll_sqlite(engine, on_change, stop)


async def _poll_sqlite(engine: AsyncEngine, on_change: OnChange, stop: asyncio.Event) -> None:
    backoff = Backoff(initial=1.0, maximum=30.0, rng=random.random)
    while not stop.is_set():
        try:
            async with engine.connect() as connection:
                # The driver's connection, not SQLAlchemy's: a PRAGMA needs no transaction,
                # and this one must not take the write lock (see db/engine.py).
                raw = (await connection.get_raw_connection()).driver_connection
                assert raw is not None
                last = await _data_version(raw)
                backoff.reset()
                while not await wait_or_stop(stop, SQLITE_POLL_SECONDS):
                    version = await _data_version(raw)
                    if version != last:
                        last = version
                        on_change("*")
        except Exception as exc:
            delay = backoff.next_delay()
            log.warning("watching the database failed (%s); again in %.0f s", exc, delay)
            await wait_or_stop(stop, delay)


async def _data_version(raw: Any) -> int:
    cursor = await raw.execute("PRAGMA data_version")
    row = await cursor.fetchone()
    await cursor.close()
    return int(row[0])


async def _listen_postgresql(engine: AsyncEngine, on_change: OnChange, stop: asyncio.Event) -> None:
    backoff = Backoff(initial=1.0, maximum=30.0, rng=random.random)

    def notified(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
        on_change(payload or "*")

    while not stop.is_set():
        try:
            async with engine.connect() as connection:
                raw = (await connection.get_raw_connection()).driver_connection
                assert raw is not None
                await raw.add_listener(CHANNEL, notified)
                backoff.reset()
                # Whatever was committed while nobody listened is looked at now.
                on_change("*")
                try:
                    while not await wait_or_stop(stop, LISTEN_CHECK_SECONDS):
                        await asyncio.wait_for(raw.execute("SELECT 1"), LISTEN_CHECK_SECONDS)
                finally:
                    with contextlib.suppress(Exception):
                        await raw.remove_listener(CHANNEL, notified)
        except Exception as exc:
            delay = backoff.next_delay()
            log.warning("listening for other processes failed (%s); again in %.0f s", exc, delay)
            await wait_or_stop(stop, delay)
