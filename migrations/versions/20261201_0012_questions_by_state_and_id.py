"""questions are indexed by state and id, not by state alone

A new question is compared with the latest 30 open questions of its session
(classify/similar.py). They were found by ranking every open question of the batch's sessions,
so the work grew with their number: with 200 open questions a batch read 120 rows of questions
on PostgreSQL (415 hundred steps of SQLite's virtual machine), with 5,200 open 2,570 rows
(10,406), and a batch of 200 questions spent 25-27 ms on it. With the id after the state, each
session's latest questions of each open state are read from the end of that state's range.
Every query that looked questions up by state alone uses the new index as it used the old one.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_questions_state_id", "questions", ["state", "id"])
    op.drop_index("ix_questions_state", table_name="questions")


def downgrade() -> None:
    op.create_index("ix_questions_state", "questions", ["state"])
    op.drop_index("ix_questions_state_id", table_name="questions")
