"""Alembic: the models match the migrations, and every revision goes down and back up, on both databases."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import migrate
from qa_mailer.db.base import Base
from qa_mailer.db.engine import PAGE_SIZE, create_engine
from qa_mailer.db.revision import head_revision

TABLES = {
    "messages",
    "raw_messages",
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
    "unknown_token_replies",
    "bounces",
    "notice_tokens",
    "service_keys",
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
        assert await alembic_current(empty_engine) == revision
        await migrate.downgrade(empty_engine, str(target))
        assert await migrate.current_revision(empty_engine) == await alembic_current(empty_engine)
    assert await tables(empty_engine) == set()
    await migrate.upgrade(empty_engine)
    assert await migrate.current_revision(empty_engine) == migrate.head_revision()
    assert migrate.head_revision() == script.get_current_head()
    assert await differences(empty_engine) == []


async def alembic_current(engine: AsyncEngine) -> str | None:
    """The database's revision as Alembic itself reads it."""
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


def test_the_newest_revision_is_read_from_the_files_as_alembic_reads_it(tmp_path: Path) -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert head_revision() == script.get_current_head() is not None
    # A chain with a merge: two branches from 0001 joined by 0004.
    versions = tmp_path / "versions"
    versions.mkdir()
    chain = {
        "0001": "None",
        "0002": '"0001"',
        "0003": '"0001"',
        "0004": '("0002", "0003")',
    }
    for name, down in chain.items():
        (versions / f"20261130_{name}_step.py").write_text(
            f'"""step {name}\n\nRevision ID: {name}\n"""\n\n'
            f'revision: str = "{name}"\ndown_revision: str | tuple[str, ...] | None = {down}\n',
            encoding="utf-8",
        )
    (versions / "README.py").write_text("# not a migration\n", encoding="utf-8")
    assert head_revision(versions) == "0004"
    # Without the merge there are two newest revisions: an error naming the folder and both.
    (versions / "20261130_0004_step.py").unlink()
    with pytest.raises(RuntimeError, match=r"versions: .* found 0002, 0003"):
        head_revision(versions)


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


@pytest.mark.asyncio
async def test_0002_keeps_the_data_of_a_database_at_0001(empty_engine: AsyncEngine) -> None:
    from sqlalchemy import text

    await migrate.upgrade(empty_engine, "0001")
    now = "2026-12-03 12:00:00"
    async with empty_engine.begin() as connection:
        for sql in (
            "INSERT INTO messages (id, received_at, source, message_id, fingerprint, size, raw,"
            f" state) VALUES (1, '{now}', 'smtp', '<q1@x.example.bg>', 'f1', 1, 'x', 'processed')",
            "INSERT INTO threads (id, session_no, session_source, participant_email,"
            f" participant_name, subject_key, created_at) VALUES (1, 1, 'schedule', 'a@x.bg', 'A', 'k', '{now}')",
            "INSERT INTO questions (id, thread_id, message_id, subject, body, state, asked_at)"
            f" VALUES (1, 1, 1, 's', 'b', 'with_expert', '{now}')",
            f"INSERT INTO dispatches (id, token, session_no, experts, created_at) VALUES (1, 't1', 1, 'e@x.org', '{now}')",
            f"INSERT INTO dispatches (id, token, session_no, experts, created_at) VALUES (2, 't2', 1, 'e@x.org', '{now}')",
            # The race 0002 fixes: one question in two dispatches.
            "INSERT INTO dispatch_questions (dispatch_id, question_id) VALUES (1, 1), (2, 1)",
            "INSERT INTO outbox (id, message_id, kind, question_id, envelope_from, recipients, raw,"
            f" state, attempts, next_attempt_at, created_at) VALUES (7, '<qa.ack.1@x>', 'ack', 1,"
            f" 'qa@x.org', 'a@x.bg', 'x', 'sent', 1, '{now}', '{now}')",
        ):
            await connection.execute(text(sql))
    await migrate.upgrade(empty_engine)
    async with empty_engine.connect() as connection:
        message = (
            await connection.execute(text("SELECT rfc_message_id, attempts FROM messages"))
        ).one()
        outbox = (await connection.execute(text("SELECT key, rfc_message_id FROM outbox"))).one()
        acknowledged = await connection.scalar(text("SELECT acknowledged_at FROM questions"))
        session_no = await connection.scalar(text("SELECT session_no FROM questions"))
        dispatched = (
            await connection.execute(text("SELECT dispatch_id FROM dispatch_questions"))
        ).all()
    assert tuple(message) == ("<q1@x.example.bg>", 0)
    assert tuple(outbox) == ("ack:O-7", "<qa.ack.1@x>")
    assert acknowledged is not None
    assert session_no == 1  # its thread's (0012)
    assert [d for (d,) in dispatched] == [1]
    await migrate.downgrade(empty_engine, "0001")
    async with empty_engine.connect() as connection:
        assert await connection.scalar(text("SELECT message_id FROM outbox")) == "<qa.ack.1@x>"


@pytest.mark.asyncio
async def test_0003_reads_old_comma_joined_recipients_with_an_address_parser(
    empty_engine: AsyncEngine,
) -> None:
    from sqlalchemy import text

    from qa_mailer.db import OutboxMail
    from qa_mailer.db.engine import session_factory

    await migrate.upgrade(empty_engine, "0002")
    now = "2026-12-03 12:00:00"
    rows = [
        # (id, recipients as 0002 stored them, state, last_error)
        (1, "a@x.example.bg", "sent", None),
        (2, '"p6,x"@firm.example.bg,b@firm.example.bg', "queued", None),
        (
            3,
            "e1@clusters.example.org,gone@clusters.example.org",
            "sent",
            "refused for some recipients: gone@clusters.example.org: 550 5.1.1 no such user",
        ),
    ]
    async with empty_engine.begin() as connection:
        for id_, recipients, state, last_error in rows:
            await connection.execute(
                text(
                    "INSERT INTO outbox (id, key, rfc_message_id, kind, envelope_from, recipients,"
                    " raw, state, attempts, next_attempt_at, created_at, last_error) VALUES"
                    f" ({id_}, 'ack:Q-{id_}', '<m{id_}@x>', 'ack', 'qa@x.org', :recipients,"
                    f" :raw, :state, 1, '{now}', '{now}', :last_error)"
                ),
                {"recipients": recipients, "raw": b"x", "state": state, "last_error": last_error},
            )
    await migrate.upgrade(empty_engine)
    async with session_factory(empty_engine)() as tx:
        found = {row.id: row for row in await tx.scalars(select(OutboxMail))}
    assert found[1].recipients == ["a@x.example.bg"]
    assert found[2].recipients == ['"p6,x"@firm.example.bg', "b@firm.example.bg"]
    assert found[3].outcomes == {
        "gone@clusters.example.org": {
            "outcome": "refused",
            "code": 550,
            "text": "5.1.1 no such user",
        }
    }
    assert [row.refused for row in found.values()] == [0, 0, 1]
    await migrate.downgrade(empty_engine, "0002")
    async with empty_engine.connect() as connection:
        joined = await connection.scalar(text("SELECT recipients FROM outbox WHERE id = 2"))
    assert joined == '"p6,x"@firm.example.bg,b@firm.example.bg'


@pytest.mark.asyncio
async def test_0010_moves_each_mail_to_raw_messages_and_back(empty_engine: AsyncEngine) -> None:
    from sqlalchemy import text

    await migrate.upgrade(empty_engine, "0009")
    now = "2026-12-03 12:00:00"
    mails = {1: b"Subject: x\r\n\r\n\xe8\xe0\x00 bytes as they came\r\n", 2: b""}
    async with empty_engine.begin() as connection:
        for id_, raw in mails.items():
            await connection.execute(
                text(
                    "INSERT INTO messages (id, received_at, source, fingerprint, size, raw, state,"
                    f" attempts) VALUES ({id_}, '{now}', 'smtp', 'f{id_}', 40, :raw, 'processed', 1)"
                ),
                {"raw": raw},
            )
    await migrate.upgrade(empty_engine)
    async with empty_engine.connect() as connection:
        moved = (await connection.execute(text("SELECT message_id, raw FROM raw_messages"))).all()
        columns = await connection.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("messages")}
        )
    assert {id_: bytes(raw) for id_, raw in moved} == mails
    assert "raw" not in columns
    await migrate.downgrade(empty_engine, "0009")
    async with empty_engine.connect() as connection:
        back = (await connection.execute(text("SELECT id, raw FROM messages"))).all()
    assert {id_: bytes(raw) for id_, raw in back} == mails


@pytest.mark.asyncio
async def test_0011_compresses_the_mail_and_the_texts_with_lz4_on_postgresql(
    empty_engine: AsyncEngine,
) -> None:
    from sqlalchemy import text

    columns = {
        ("raw_messages", "raw"),
        ("outbox", "raw"),
        ("questions", "body"),
        ("answers", "body"),
    }

    async def methods() -> dict[tuple[str, str], str]:
        async with empty_engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT c.relname, a.attname, a.attcompression::text FROM pg_attribute a"
                    " JOIN pg_class c ON c.oid = a.attrelid"
                    " WHERE c.relname IN ('raw_messages', 'outbox', 'questions', 'answers')"
                    " AND a.attnum > 0 AND NOT a.attisdropped"
                )
            )
            return {(table, column): method for table, column, method in rows}

    await migrate.upgrade(empty_engine)
    if empty_engine.dialect.name != "postgresql":
        return  # SQLite has nothing of the kind; the revision goes down and up above.
    found = await methods()
    # "l" is LZ4; "" is the server's default (pglz), kept by every other column.
    assert {key for key, method in found.items() if method == "l"} == columns
    assert {method for key, method in found.items() if key not in columns} == {""}
    await migrate.downgrade(empty_engine, "0010")
    assert set((await methods()).values()) == {""}


@pytest.mark.asyncio
async def test_a_new_sqlite_database_gets_16_kb_pages_and_an_old_one_keeps_its_own(
    tmp_path: Path,
) -> None:
    new = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    await migrate.upgrade(new)
    old_file = tmp_path / "old.db"
    with sqlite3.connect(old_file) as made_before:
        made_before.execute("PRAGMA page_size=4096")
        made_before.execute("CREATE TABLE kept (id INTEGER PRIMARY KEY)")
    old = create_engine(f"sqlite+aiosqlite:///{old_file}")
    try:
        await migrate.upgrade(old)
        for engine, size in ((new, PAGE_SIZE), (old, 4096)):
            async with engine.connect() as connection:
                assert await connection.scalar(text("PRAGMA page_size")) == size
        # The old database takes the migrations all the same, beside its own table.
        assert TABLES | {"kept"} <= await tables(old)
    finally:
        await new.dispose()
        await old.dispose()
