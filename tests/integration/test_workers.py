"""Workers on SQLite and PostgreSQL: heartbeats, the dead found out, leases taken and lost."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import Lease, Worker
from qa_mailer.db.engine import session_factory
from qa_mailer.workers import FORGET_AFTER, Workers
from tests.helpers import FakeClock, registered


async def worker_rows(engine: AsyncEngine) -> dict[int, Worker]:
    async with session_factory(engine)() as tx:
        return {w.id: w for w in await tx.scalars(select(Worker))}


@pytest.mark.asyncio
async def test_a_silent_worker_is_presumed_dead_and_its_leases_freed(engine: AsyncEngine) -> None:
    clock = FakeClock()
    sessions = session_factory(engine)
    alive, silent = await registered(sessions, clock), await registered(sessions, clock)
    assert await silent.acquire("imap:box") and not await alive.acquire("imap:box")
    clock.advance(seconds=alive.timing.dead_after_seconds)
    assert await alive.beat() == [], "silent exactly as long as allowed: not yet dead"
    clock.advance(seconds=1)
    assert await alive.beat() == [silent.id]
    rows = await worker_rows(engine)
    assert rows[silent.id].stopped_at == clock.now() and "presumed dead" in str(
        rows[silent.id].stop_reason
    )
    assert rows[alive.id].stopped_at is None and rows[alive.id].heartbeat_at == clock.now()
    assert await alive.acquire("imap:box")
    # The silent one was only paused: its next beat says so, and finds its lease gone.
    lost = silent.lost("imap:box")
    await silent.beat()
    assert lost.is_set() and "imap:box" not in silent.held
    assert (await worker_rows(engine))[silent.id].stopped_at is None


@pytest.mark.asyncio
async def test_a_lease_is_renewed_by_beats_and_free_once_it_runs_out(engine: AsyncEngine) -> None:
    clock = FakeClock()
    sessions = session_factory(engine)
    first, second = await registered(sessions, clock), await registered(sessions, clock)
    assert await first.acquire("schedule")
    for _ in range(5):
        clock.advance(seconds=first.timing.heartbeat_seconds)
        await first.beat()
        assert not await second.acquire("schedule")
    clock.advance(seconds=first.timing.dead_after_seconds + 1)  # first stops beating
    assert await second.acquire("schedule")
    await second.release("schedule")
    assert await first.acquire("schedule"), "released: free at once"
    async with sessions() as tx:
        assert (await tx.scalars(select(Lease.worker_id))).all() == [first.id]


@pytest.mark.asyncio
async def test_workers_that_ended_long_ago_are_forgotten(engine: AsyncEngine) -> None:
    clock = FakeClock()
    sessions = session_factory(engine)
    old = Workers(sessions, clock)
    await old.register(["cli"])
    await old.stop("finished")
    keeper = await registered(sessions, clock)
    clock.advance(seconds=FORGET_AFTER.total_seconds() - 60)
    await keeper.beat()
    assert old.id in await worker_rows(engine)
    clock.advance(seconds=120)
    await keeper.beat()
    assert set(await worker_rows(engine)) == {keeper.id}
