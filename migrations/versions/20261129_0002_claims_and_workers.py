"""claims and workers: several processes on one database, each unit of work claimed once

- workers (every process, with its heartbeat) and leases (a job only one process may do);
- messages and outbox rows carry a claim (claimed_by, lease_until) and count attempts;
- every outgoing mail has a unique key, so nothing queues the same mail twice;
- a question sits in at most one dispatch (duplicates from the race this fixes are dropped,
  keeping the first dispatch of each question);
- questions record when they were acknowledged (the hourly limit counts these, not the outbox);
- states, kinds and sources are checked values;
- the RFC Message-ID columns are called rfc_message_id: message_id is always a foreign key;
- on PostgreSQL, inserts into messages and outbox NOTIFY the channel qa_mailer, so idle
  workers wake at once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import qa_mailer.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = qa_mailer.db.base.UTCDateTime

# The values each checked column may hold, as the models declare them (migrations keep their
# own copy: a later change to a model must not rewrite what this revision created).
CHECKS = {
    ("messages", "state"): (
        "received",
        "processing",
        "processed",
        "ignored",
        "held",
        "quarantined",
    ),
    ("messages", "kind"): ("question", "follow-up", "reply", "expert", "automatic"),
    ("messages", "source"): ("imap", "smtp", "lmtp", "file"),
    ("outbox", "state"): ("queued", "sending", "sent", "failed"),
    ("outbox", "kind"): ("ack", "route", "answer", "receipt", "digest"),
    ("questions", "state"): ("new", "with_expert", "answered"),
    ("answers", "state"): ("published", "held", "rejected"),
}

NOTIFY_FUNCTION = """
CREATE FUNCTION qa_mailer_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('qa_mailer', TG_TABLE_NAME);
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""
NOTIFY_TRIGGERS = {
    "messages_inserted": "AFTER INSERT ON messages FOR EACH STATEMENT",
    "messages_released": (
        "AFTER UPDATE OF state ON messages FOR EACH ROW WHEN (NEW.state = 'received')"
    ),
    "outbox_inserted": "AFTER INSERT ON outbox FOR EACH STATEMENT",
    "outbox_requeued": (
        "AFTER UPDATE OF state ON outbox FOR EACH ROW "
        "WHEN (NEW.state = 'queued' AND OLD.state <> 'queued')"
    ),
}


def _checks(table: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(column, values) for (name, column), values in CHECKS.items() if name == table]


def _add_checks(batch_op: object, table: str) -> None:
    for column, values in _checks(table):
        allowed = ", ".join(f"'{value}'" for value in values)
        batch_op.create_check_constraint(  # type: ignore[attr-defined]
            f"ck_{table}_{column}", f"{column} IN ({allowed})"
        )


def _drop_checks(batch_op: object, table: str) -> None:
    for column, _ in _checks(table):
        batch_op.drop_constraint(f"ck_{table}_{column}", type_="check")  # type: ignore[attr-defined]


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("roles", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("started_at", UTC(), nullable=False),
        sa.Column("heartbeat_at", UTC(), nullable=False),
        sa.Column("stopped_at", UTC(), nullable=True),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_index(op.f("ix_workers_heartbeat_at"), "workers", ["heartbeat_at"], unique=False)
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("worker_id", sa.Integer(), nullable=False),
        sa.Column("acquired_at", UTC(), nullable=False),
        sa.Column("expires_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(
            ["worker_id"],
            ["workers.id"],
            name=op.f("fk_leases_worker_id_workers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )

    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_index("ix_messages_message_id")
        batch_op.alter_column("message_id", new_column_name="rfc_message_id")
        batch_op.add_column(sa.Column("claimed_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("lease_until", UTC(), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_foreign_key(
            "fk_messages_claimed_by_workers", "workers", ["claimed_by"], ["id"], ondelete="SET NULL"
        )
        _add_checks(batch_op, "messages")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.create_index("ix_messages_rfc_message_id", ["rfc_message_id"], unique=False)

    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_constraint("uq_outbox_message_id", type_="unique")
        batch_op.alter_column("message_id", new_column_name="rfc_message_id")
        batch_op.add_column(sa.Column("key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("lease_until", UTC(), nullable=True))
        batch_op.create_foreign_key(
            "fk_outbox_claimed_by_workers", "workers", ["claimed_by"], ["id"], ondelete="SET NULL"
        )
    # Mail queued before keys existed gets one from its row: unique, and never reused.
    op.execute(
        sa.text(
            r"UPDATE outbox SET key = kind || '\:O-' || CAST(id AS VARCHAR(20)) WHERE key IS NULL"
        )
    )
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.alter_column("key", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint("uq_outbox_key", ["key"])
        batch_op.create_unique_constraint("uq_outbox_rfc_message_id", ["rfc_message_id"])
        _add_checks(batch_op, "outbox")

    with op.batch_alter_table("questions") as batch_op:
        batch_op.add_column(sa.Column("acknowledged_at", UTC(), nullable=True))
        _add_checks(batch_op, "questions")
    op.execute(
        "UPDATE questions SET acknowledged_at = (SELECT min(outbox.created_at) FROM outbox "
        "WHERE outbox.question_id = questions.id AND outbox.kind = 'ack')"
    )

    with op.batch_alter_table("answers") as batch_op:
        _add_checks(batch_op, "answers")

    # The race this revision fixes could put a question in two dispatches; keep its first.
    op.execute(
        "DELETE FROM dispatch_questions WHERE EXISTS (SELECT 1 FROM dispatch_questions AS first "
        "WHERE first.question_id = dispatch_questions.question_id "
        "AND first.dispatch_id < dispatch_questions.dispatch_id)"
    )
    with op.batch_alter_table("dispatch_questions") as batch_op:
        batch_op.drop_index("ix_dispatch_questions_question_id")
        batch_op.create_unique_constraint("uq_dispatch_questions_question_id", ["question_id"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION)
        for name, when in NOTIFY_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION qa_mailer_notify()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, when in NOTIFY_TRIGGERS.items():
            table = when.split(" ON ")[1].split()[0]
            op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute("DROP FUNCTION qa_mailer_notify()")

    with op.batch_alter_table("dispatch_questions") as batch_op:
        batch_op.drop_constraint("uq_dispatch_questions_question_id", type_="unique")
        batch_op.create_index("ix_dispatch_questions_question_id", ["question_id"], unique=False)

    with op.batch_alter_table("answers") as batch_op:
        _drop_checks(batch_op, "answers")

    with op.batch_alter_table("questions") as batch_op:
        _drop_checks(batch_op, "questions")
        batch_op.drop_column("acknowledged_at")

    # Rows claimed by a worker go back to the states the older code knows.
    op.execute("UPDATE outbox SET state = 'queued' WHERE state = 'sending'")
    with op.batch_alter_table("outbox") as batch_op:
        _drop_checks(batch_op, "outbox")
        batch_op.drop_constraint("uq_outbox_rfc_message_id", type_="unique")
        batch_op.drop_constraint("uq_outbox_key", type_="unique")
        batch_op.drop_constraint("fk_outbox_claimed_by_workers", type_="foreignkey")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("key")
        batch_op.alter_column("rfc_message_id", new_column_name="message_id")
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.create_unique_constraint("uq_outbox_message_id", ["message_id"])

    op.execute("UPDATE messages SET state = 'received' WHERE state = 'processing'")
    with op.batch_alter_table("messages") as batch_op:
        _drop_checks(batch_op, "messages")
        batch_op.drop_index("ix_messages_rfc_message_id")
        batch_op.drop_constraint("fk_messages_claimed_by_workers", type_="foreignkey")
        batch_op.drop_column("attempts")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")
        batch_op.alter_column("rfc_message_id", new_column_name="message_id")
    with op.batch_alter_table("messages") as batch_op:
        batch_op.create_index("ix_messages_message_id", ["message_id"], unique=False)

    op.drop_table("leases")
    op.drop_index(op.f("ix_workers_heartbeat_at"), table_name="workers")
    op.drop_table("workers")
