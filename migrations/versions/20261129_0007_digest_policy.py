"""digest policy and notices: the closing digest of a session is marked; organisers told

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
    with op.batch_alter_table("digest_runs") as batch_op:
        batch_op.add_column(
            sa.Column("closing", sa.Boolean(), nullable=False, server_default=sa.false())
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
    with op.batch_alter_table("digest_runs") as batch_op:
        batch_op.drop_column("closing")
