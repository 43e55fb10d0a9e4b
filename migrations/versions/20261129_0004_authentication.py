"""held automatic replies: the outbox may hold the notice that tells the expert and organisers

An expert's reply that looks automatic (an out-of-office notice, or one that came implausibly
soon after the expert's copy) is held, and a mail of the new kind "held" says so.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 18:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# This revision's own copy of the kinds (a later change to the model must not rewrite it).
KINDS_BEFORE = ("ack", "route", "answer", "receipt", "digest")
KINDS_AFTER = (*KINDS_BEFORE, "held")


def _set_kinds(kinds: tuple[str, ...]) -> None:
    allowed = ", ".join(f"'{kind}'" for kind in kinds)
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_constraint("ck_outbox_kind", type_="check")
        batch_op.create_check_constraint("ck_outbox_kind", f"kind IN ({allowed})")


def upgrade() -> None:
    _set_kinds(KINDS_AFTER)


def downgrade() -> None:
    # The older code knows no such mail; a notice not yet sent is dropped with the kind.
    op.execute("DELETE FROM outbox WHERE kind = 'held'")
    _set_kinds(KINDS_BEFORE)
