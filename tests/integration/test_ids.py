"""Ids taken in advance for a batch of rows: unused, increasing, and what the database would give."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import Dispatch, Question, Thread
from qa_mailer.db.engine import session_factory
from qa_mailer.db.ids import allocate_ids, allocate_ids_of, table_of

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.mark.asyncio
async def test_ids_for_several_tables_at_once_are_each_tables_next_ones(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    async with sessions.begin() as tx:
        [first] = await allocate_ids(tx, table_of(Dispatch), 1)
        await tx.execute(
            insert(table_of(Dispatch)),
            [
                {
                    "id": first,
                    "token": "t1",
                    "route_key": "r1",
                    "session_no": 1,
                    "experts": "e",
                    "created_at": NOW,
                }
            ],
        )
    async with sessions.begin() as tx:
        threads, questions, none, dispatches = await allocate_ids_of(
            tx,
            [
                (table_of(Thread), 3),
                (table_of(Question), 2),
                (table_of(Question), 0),
                (table_of(Dispatch), 4),
            ],
        )
        assert none == []
        assert len(threads) == 3 and len(questions) == 2
        assert threads == sorted(threads) and questions == sorted(questions)
        assert dispatches == sorted(dispatches) and len(set(dispatches)) == 4
        assert min(dispatches) > first
        await tx.execute(
            insert(table_of(Dispatch)),
            [
                {
                    "id": n,
                    "token": f"t{n}x",
                    "route_key": f"r{n}x",
                    "session_no": 1,
                    "experts": "e",
                    "created_at": NOW,
                }
                for n in dispatches
            ],
        )
    async with sessions.begin() as tx:
        # The next ids go on after the rows written with the ones taken.
        [after] = await allocate_ids(tx, table_of(Dispatch), 1)
        assert after > max(dispatches)
        stored = list(await tx.scalars(select(Dispatch.id).order_by(Dispatch.id)))
        assert stored == [first, *dispatches]
