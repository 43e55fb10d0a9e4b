"""Is this database current? Answered without Alembic, which only `db` commands need.

Every command that touches the database first checks that the schema is at the newest
migration. Importing Alembic for that costs a tenth of a second, as much as the rest of a
command such as `status`; the check needs two strings only. The database's revision is the
row Alembic keeps in ``alembic_version``; the code's newest revision is the one no migration
file names as its ``down_revision``. tests/integration/test_migrations.py checks both answers
against Alembic's own at every revision.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from qa_mailer.resources import migrations_dir

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

# Alembic's default name for the table holding the revision (migrations/env.py keeps it).
VERSION_TABLE = "alembic_version"

# `revision: str = "0008"` and `down_revision: str | None = "0007"` (or None, or a tuple of
# revisions for a merge), at the start of a line, as Alembic's file template writes them.
_REVISION = re.compile(r"^revision\b[^=\n]*=(.*)$", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=\n]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"""["']([^"']+)["']""")


class SchemaBehind(Exception):
    """The database is not at the newest migration."""


def head_revision(versions: Path | None = None) -> str:
    """The newest revision the code knows, read from the migration files in ``versions``."""
    folder = versions if versions is not None else migrations_dir() / "versions"
    revisions: set[str] = set()
    named_down: set[str] = set()
    for path in sorted(folder.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        revision = _REVISION.search(source)
        if revision is None:
            continue
        revisions.update(_QUOTED.findall(revision.group(1)))
        down = _DOWN_REVISION.search(source)
        if down is not None:
            named_down.update(_QUOTED.findall(down.group(1)))
    heads = sorted(revisions - named_down)
    if len(heads) != 1:
        found = ", ".join(heads) or "none"
        raise RuntimeError(
            f"{folder}: the migrations must end in one newest revision, found {found}"
        )
    return heads[0]


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for a database never upgraded."""
    async with engine.connect() as connection:
        return await connection.run_sync(_read_revision)


def _read_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    # Alembic keeps one row per head; this project's migrations have one, so more than one row
    # is a database some other code migrated, and it is shown as it is.
    return ", ".join(sorted(rows)) or None


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
