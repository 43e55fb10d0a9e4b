"""digest policy, notices and bounces

- digest_runs.automatic_key is 32 characters long: the programme report (session 0) is
  recorded as "programme:2026-12-13".
- bounces: one row per address a bounce reports failed, with the mail of ours it returns
  (outbox_id, question_id, kind) when its Message-ID is ours.

- outbox.kind may be "notice": a mail telling the organisers which held and quarantined
  messages wait for them.
- messages.organisers_told_at: when the organisers were told of this held or quarantined
  message (NULL: not yet; messages held or quarantined before this revision count as told,
  so an upgrade does not mail a backlog the organisers have seen in `held list`).

- digest_runs.closing: true for the digest that closed its session (all questions answered,
  or the closing delay passed). Automatic digests now carry the session and the organisers'
  day in automatic_key ("VC3:2026-12-18"); rows from before keep "VC3", which no new key
  can equal.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 19:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import qa_mailer.db.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# This revision's own copy of the kinds (a later change to the model must not rewrite it).
KINDS_BEFORE = ("ack", "route", "answer", "receipt", "digest", "held")
KINDS_AFTER = (*KINDS_BEFORE, "notice")


def _set_kinds(kinds: tuple[str, ...]) -> None:
    allowed = ", ".join(f"'{kind}'" for kind in kinds)
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_constraint("ck_outbox_kind", type_="check")
        batch_op.create_check_constraint("ck_outbox_kind", f"kind IN ({allowed})")


def upgrade() -> None:
    op.create_table(
        "bounces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("permanent", sa.Boolean(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("question_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("created_at", qa_mailer.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_bounces_message_id_messages")
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_bounces_outbox_id_outbox")
        ),
        sa.ForeignKeyConstraint(
            ["question_id"], ["questions.id"], name=op.f("fk_bounces_question_id_questions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounces")),
        sa.UniqueConstraint("message_id", "address", name=op.f("uq_bounces_message_id_address")),
    )
    op.create_index(op.f("ix_bounces_address"), "bounces", ["address"], unique=False)
    op.create_index(op.f("ix_bounces_question_id"), "bounces", ["question_id"], unique=False)
    with op.batch_alter_table("digest_runs") as batch_op:
        batch_op.add_column(
            sa.Column("closing", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.alter_column(
            "automatic_key", existing_type=sa.String(length=16), type_=sa.String(length=32)
        )
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(
            sa.Column("organisers_told_at", qa_mailer.db.base.UTCDateTime(), nullable=True)
        )
    op.execute(
        "UPDATE messages SET organisers_told_at = COALESCE(processed_at, received_at) "
        "WHERE state IN ('held', 'quarantined')"
    )
    _set_kinds(KINDS_AFTER)


def downgrade() -> None:
    # The older code knows no such mail; a notice not yet sent is dropped with the kind.
    op.execute("DELETE FROM outbox WHERE kind = 'notice'")
    _set_kinds(KINDS_BEFORE)
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("organisers_told_at")
    # The programme reports (session 0) have keys too long for the older column.
    op.execute("DELETE FROM digest_runs WHERE session_no = 0")
    with op.batch_alter_table("digest_runs") as batch_op:
        batch_op.drop_column("closing")
        batch_op.alter_column(
            "automatic_key", existing_type=sa.String(length=32), type_=sa.String(length=16)
        )
    op.drop_index(op.f("ix_bounces_question_id"), table_name="bounces")
    op.drop_index(op.f("ix_bounces_address"), table_name="bounces")
    op.drop_table("bounces")
