"""Alembic: the models match the migrations, and every revision goes down and back up, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import migrate
from qa_mailer.db.base import Base
from qa_mailer.db.engine import create_engine

TABLES = {
    "messages",
    "imap_cursors",
    "threads",
    "questions",
    "dispatches",
    "dispatch_questions",
    "answers",
    "outbox",
    "digest_runs",
    "workers",
    "leases",
}


@pytest_asyncio.fixture
async def empty_engine(empty_database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(empty_database)
    yield engine
    await engine.dispose()


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    return set(names) - {"alembic_version"}


async def differences(engine: AsyncEngine) -> list[object]:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
            )
        )


@pytest.mark.asyncio
async def test_models_match_the_migrations(empty_engine: AsyncEngine) -> None:
    await migrate.upgrade(empty_engine)
    assert await tables(empty_engine) == TABLES
    assert await differences(empty_engine) == []


@pytest.mark.asyncio
async def test_every_revision_goes_down_and_back_up(empty_engine: AsyncEngine) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = [r.revision for r in script.walk_revisions("base", "heads")]  # newest first
    assert revisions, "no migrations found"
    await migrate.upgrade(empty_engine)
    for revision in revisions:
        target = script.get_revision(revision).down_revision or "base"
        await migrate.downgrade(empty_engine, str(target))
        await migrate.upgrade(empty_engine, revision)
        assert await migrate.current_revision(empty_engine) == revision
        await migrate.downgrade(empty_engine, str(target))
    assert await tables(empty_engine) == set()
    await migrate.upgrade(empty_engine)
    assert await migrate.current_revision(empty_engine) == migrate.head_revision()
    assert await differences(empty_engine) == []


@pytest.mark.asyncio
async def test_a_database_behind_is_refused_with_the_command_that_fixes_it(
    empty_engine: AsyncEngine,
) -> None:
    with pytest.raises(
        migrate.SchemaBehind, match=r"has no tables yet: run `qa-mailer db upgrade`"
    ):
        await migrate.require_current(empty_engine)
    await migrate.upgrade(empty_engine)
    await migrate.require_current(empty_engine)
