"""the mail itself moves out of messages into raw_messages

- raw_messages: one row per message, its bytes as they arrived (message_id, raw).
- messages.raw is dropped. Claiming a message and finishing it each rewrite its row; with the
  mail in it, SQLite rewrote several KB (and its overflow pages) twice per message, and read
  every column stored after the mail (state, kind, sender, ...) through those pages.

The mail is copied, so the upgrade takes as long as writing every stored mail once more. On
SQLite the messages table is rebuilt without it; on PostgreSQL the dropped column's bytes stay
in the table until `VACUUM FULL messages` rewrites it (nothing reads them meanwhile).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "raw_messages",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_raw_messages_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_raw_messages")),
    )
    op.execute("INSERT INTO raw_messages (message_id, raw) SELECT id, raw FROM messages")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("raw")


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("raw", sa.LargeBinary(), nullable=True))
    op.execute(
        "UPDATE messages SET raw ="
        " (SELECT raw FROM raw_messages WHERE raw_messages.message_id = messages.id)"
    )
    # Every message has its row in raw_messages; one that had not is an empty mail, as
    # retention leaves it, rather than a failed downgrade.
    op.execute(
        sa.text("UPDATE messages SET raw = :empty WHERE raw IS NULL").bindparams(
            sa.bindparam("empty", b"", type_=sa.LargeBinary())
        )
    )
    with op.batch_alter_table("messages") as batch_op:
        batch_op.alter_column("raw", existing_type=sa.LargeBinary(), nullable=False)
    op.drop_table("raw_messages")
