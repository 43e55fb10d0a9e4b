"""A `serve` process shows its stacks when asked, and one whose stop hangs ends by itself.

Both through a real `serve` process: SIGUSR1 while it runs, and a SIGTERM while the test holds
the database's write lock (SQLite) or a lock on the workers table (PostgreSQL), so that the
process's last writes cannot finish.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.app import GRACE_SECONDS
from qa_mailer.watchdog import STOP_MARGIN_SECONDS, TASKS_LOGGED_BEFORE
from tests.e2e.conftest import MakeConfig
from tests.helpers import wait_until
from tests.servers.fleet import Fleet
from tests.servers.ports import free_port


def log_of(fleet: Fleet) -> str:
    [path] = fleet.log_of.values()
    return path.read_text(errors="replace")


def task_stacks(log: str) -> dict[str, str]:
    """The tasks a stack dump names, each with the frames it printed under its name."""
    stacks: dict[str, str] = {}
    name = None
    for line in log.splitlines():
        if line.startswith("task ") and line.endswith(", waiting in:"):
            name = line.removeprefix("task ").removesuffix(", waiting in:")
            stacks[name] = ""
        elif name is not None and line.startswith("    "):
            stacks[name] += line + "\n"
        else:
            name = None
    return stacks


async def started(fleet: Fleet) -> None:
    await fleet.start(1)
    [process] = fleet.running

    async def running() -> bool:
        assert process.returncode is None, log_of(fleet)
        return "qa-mailer running for" in log_of(fleet)

    await wait_until(running, timeout=60, what="serve to start")


@pytest.mark.asyncio
async def test_sigusr1_shows_every_thread_and_task_and_the_service_goes_on(
    tmp_path: Path, engine: AsyncEngine, e2e_config: MakeConfig
) -> None:
    config = e2e_config(listener={"enabled": True, "host": "127.0.0.1", "port": free_port()})
    fleet = Fleet(config.path, tmp_path / "logs")
    await started(fleet)
    [process] = fleet.running

    # Twice, the first at once: a dump while the service starts its threads (the language
    # model's import) killed the process when faulthandler did it from the signal handler.
    process.send_signal(signal.SIGUSR1)
    await asyncio.sleep(0.05)
    process.send_signal(signal.SIGUSR1)
    await wait_until(
        lambda: asyncio.sleep(0, "stacks asked for (SIGUSR1)" in log_of(fleet)),
        what="the tasks' stacks in the log",
    )
    log = log_of(fleet)
    # The tasks, by name, each with where it waits...
    for task in ("pipeline", "sender", "heartbeat", "imap"):
        assert f"task {task}, waiting in:" in log, log
    assert "qa_mailer/pipeline.py" in log
    # ...and the other threads (the parsing helpers' pool manager, aiosqlite's connections)
    # with their stacks.
    assert "\nthread " in log and "threading.py" in log, log

    assert process.returncode is None  # still serving
    assert await fleet.stop() == [0]


@pytest.mark.asyncio
async def test_a_stop_that_hangs_ends_the_process_with_its_stacks_in_time(
    tmp_path: Path, database_url: str, engine: AsyncEngine, e2e_config: MakeConfig
) -> None:
    config = e2e_config(listener={"enabled": True, "host": "127.0.0.1", "port": free_port()})
    fleet = Fleet(config.path, tmp_path / "logs")
    await started(fleet)
    [process] = fleet.running
    deadline = GRACE_SECONDS + STOP_MARGIN_SECONDS

    async with engine.connect() as connection:
        # The process's last writes (its heartbeat, giving its claims back) cannot finish
        # while this is held: SQLite waits for its busy timeout (30 s), PostgreSQL for ever.
        if engine.dialect.name == "postgresql":
            await connection.execute(text("LOCK TABLE workers IN ACCESS EXCLUSIVE MODE"))
        else:
            await connection.begin()  # BEGIN IMMEDIATE: the write lock
        asked = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), deadline + 20)
        took = time.monotonic() - asked
        await connection.rollback()

    log = log_of(fleet)
    assert code == 1, log
    assert deadline - 1 <= took <= deadline + 10, took
    assert f"still stopping after {deadline - TASKS_LOGGED_BEFORE:.0f} s" in log, log
    # A task that waits on the held lock is named with its stack: the wakeups, or one in a
    # write of workers.py (the heartbeat, a lease taken, or the main task's workers.stop() when
    # the stop came before the others wrote).
    assert any(
        name == "wakeups" or ("qa_mailer/workers.py" in stack and "sqlalchemy" in stack)
        for name, stack in task_stacks(log).items()
    ), log
    assert f"Timeout (0:00:{deadline:02.0f})!" in log, log
    assert "(most recent call first)" in log
