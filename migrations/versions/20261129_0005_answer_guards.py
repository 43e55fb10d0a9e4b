"""answer guards: the expert mail's Message-ID no longer carries the token; unknown tokens counted

- dispatches.route_key: the random part of the expert mail's Message-ID, so a reply that
  only references our mail still finds its dispatch without the Message-ID revealing the
  token. Mail sent before this revision used the token itself there, so existing rows take
  their token as route key: replies to those mails keep being matched.
- unknown_token_replies: replies whose token matches nothing, per sender and time, so a
  sender guessing tokens is limited per hour and shown as one line in `held list`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 18:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import qa_mailer.db.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = qa_mailer.db.base.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("dispatches") as batch_op:
        batch_op.add_column(sa.Column("route_key", sa.String(length=32), nullable=True))
    op.execute("UPDATE dispatches SET route_key = token")
    with op.batch_alter_table("dispatches") as batch_op:
        batch_op.alter_column("route_key", existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint("uq_dispatches_route_key", ["route_key"])

    op.create_table(
        "unknown_token_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=998), nullable=False),
        sa.Column("recorded_at", UTC(), nullable=False),
        sa.Column("ignored", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_unknown_token_replies_message_id_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unknown_token_replies")),
        sa.UniqueConstraint("message_id", name=op.f("uq_unknown_token_replies_message_id")),
    )
    op.create_index(
        "ix_unknown_token_replies_sender_at",
        "unknown_token_replies",
        ["sender", "recorded_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_unknown_token_replies_sender_at", table_name="unknown_token_replies")
    op.drop_table("unknown_token_replies")
    with op.batch_alter_table("dispatches") as batch_op:
        batch_op.drop_constraint("uq_dispatches_route_key", type_="unique")
        batch_op.drop_column("route_key")
