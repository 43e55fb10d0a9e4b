"""organisers sort questions: a question may be closed, or merged into another

- questions.state may be "closed": an organiser decided it needs no answer (a "thank you"
  that became a follow-up).
- questions.closed_reason: the organiser's reason, shown by `questions show` and the digest.
- questions.state may be "merged", and questions.merged_into names the question it was
  merged into: that question's answers are sent to this one's participant too.
- questions.similar_to: an open question of the same session this one closely resembled
  when it came in; the expert's copy and the digest say so.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 19:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# This revision's own copy of the states (a later change to the model must not rewrite it).
STATES_BEFORE = ("new", "with_expert", "answered")
STATES_AFTER = (*STATES_BEFORE, "closed", "merged")


def _set_states(batch_op: object, states: tuple[str, ...]) -> None:
    allowed = ", ".join(f"'{state}'" for state in states)
    batch_op.drop_constraint("ck_questions_state", type_="check")  # type: ignore[attr-defined]
    batch_op.create_check_constraint("ck_questions_state", f"state IN ({allowed})")  # type: ignore[attr-defined]


def upgrade() -> None:
    with op.batch_alter_table("questions") as batch_op:
        batch_op.add_column(sa.Column("closed_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("merged_into", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_questions_merged_into_questions", "questions", ["merged_into"], ["id"]
        )
        batch_op.create_index("ix_questions_merged_into", ["merged_into"], unique=False)
        batch_op.add_column(sa.Column("similar_to", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_questions_similar_to_questions", "questions", ["similar_to"], ["id"]
        )
        _set_states(batch_op, STATES_AFTER)


def downgrade() -> None:
    # The older code knows no closed or merged question: one the expert has seen waits for
    # them again, one never sent waits to be sent.
    op.execute(
        "UPDATE questions SET state = CASE WHEN id IN "
        "(SELECT question_id FROM dispatch_questions) THEN 'with_expert' ELSE 'new' END "
        "WHERE state IN ('closed', 'merged')"
    )
    with op.batch_alter_table("questions") as batch_op:
        _set_states(batch_op, STATES_BEFORE)
        batch_op.drop_constraint("fk_questions_similar_to_questions", type_="foreignkey")
        batch_op.drop_column("similar_to")
        batch_op.drop_index("ix_questions_merged_into")
        batch_op.drop_constraint("fk_questions_merged_into_questions", type_="foreignkey")
        batch_op.drop_column("merged_into")
        batch_op.drop_column("closed_reason")
