"""questions.session_no: a question's session beside its thread's, indexed with state and id

A new question is compared with the latest 30 open questions of its session
(classify/similar.py). They were found by ranking every open question of the batch's sessions,
so the work grew with their number: with 2,200 open questions instead of 200, PostgreSQL read
1,100 rows of questions instead of 120, SQLite ran 2,406 hundred virtual machine steps instead
of 399, and with 5,000 open a batch spent 33 ms on it. The session was only on the thread, so no
index could hold a session's open questions in order. Now each question carries its thread's
session (moved with it by `questions move`), and ix_questions_state_session_id, which
replaces ix_questions_state, reads a session's latest of each open state from the end of its
range. Lookups by state alone use it as they used the old index. (A second index beside the old
one did not do: PostgreSQL, its statistics saying no question was new, looked the new ones up
by the old index, every one of them, and sorted them.)

Existing questions take their thread's session.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("questions", sa.Column("session_no", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE questions SET session_no ="
        " (SELECT session_no FROM threads WHERE threads.id = questions.thread_id)"
    )
    with op.batch_alter_table("questions") as batch_op:
        batch_op.alter_column("session_no", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index("ix_questions_state")
        batch_op.create_index(
            "ix_questions_state_session_id", ["state", "session_no", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("questions") as batch_op:
        batch_op.drop_index("ix_questions_state_session_id")
        batch_op.drop_column("session_no")
        batch_op.create_index("ix_questions_state", ["state"], unique=False)
