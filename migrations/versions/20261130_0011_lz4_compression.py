"""PostgreSQL compresses the mail and the texts of questions and answers with LZ4

A stored mail (raw_messages.raw, outbox.raw), a question's text and an answer's are mostly
over the 2 KB above which PostgreSQL compresses a value. Its default method, pglz, costs far
more CPU than LZ4 does: processing questions with bench/bench_process.py, the server spent
0.30-0.33 ms per question with pglz, 0.25-0.27 ms with LZ4 on the outbox's mail and the
question's text (three rounds each, taking turns).

Rows stored before keep their pglz values until they are written again; both are read alike.
Only PostgreSQL 14 or later built with LZ4 (as Debian's and the official images are) has it:
elsewhere, and on SQLite, this revision changes nothing.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("raw_messages", "raw"),
    ("outbox", "raw"),
    ("questions", "body"),
    ("answers", "body"),
)


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    offered = bind.execute(
        sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return "lz4" in (offered or [])


def _compress_with(method: str) -> None:
    if _lz4_available():
        for table, column in COLUMNS:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}")


def upgrade() -> None:
    _compress_with("lz4")


def downgrade() -> None:
    # "default": the server's default_toast_compression, pglz unless set otherwise.
    _compress_with("default")
