"""organisers answer notices by mail; the envelope sender names the mail (VERP)

- notice_tokens: the random token in the Reply-To of a notice to the organisers, with the
  held answers it listed and when it expires. A reply that brings it back, from an
  organiser, may approve or reject those answers.
- messages.kind may be "command": such a reply.
- service_keys: random keys the service makes for itself, shared by all its processes;
  "verp" signs the envelope sender of each outgoing mail (qa+bounce-<id>-<mac>@...), so a
  bounce names the mail it returns and nobody can forge one for another mail.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import qa_mailer.db.base

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# This revision's own copy of the kinds (a later change to the model must not rewrite it).
KINDS_BEFORE = ("question", "follow-up", "reply", "expert", "automatic")
KINDS_AFTER = (*KINDS_BEFORE, "command")


def _set_kinds(kinds: tuple[str, ...]) -> None:
    allowed = ", ".join(f"'{kind}'" for kind in kinds)
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_constraint("ck_messages_kind", type_="check")
        batch_op.create_check_constraint("ck_messages_kind", f"kind IN ({allowed})")


def upgrade() -> None:
    op.create_table(
        "notice_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("created_at", qa_mailer.db.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", qa_mailer.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_notice_tokens_outbox_id_outbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_tokens")),
        sa.UniqueConstraint("token", name=op.f("uq_notice_tokens_token")),
    )
    op.create_table(
        "service_keys",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", qa_mailer.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_keys")),
    )
    _set_kinds(KINDS_AFTER)


def downgrade() -> None:
    # The older code knows no organiser's command; such a message counts as an expert's mail
    # that replies to nothing (held), which is what the older code made of it.
    op.execute("UPDATE messages SET kind = 'expert' WHERE kind = 'command'")
    _set_kinds(KINDS_BEFORE)
    op.drop_table("service_keys")
    op.drop_table("notice_tokens")
