"""outbox recipients as a list, with what the relay said to each

- outbox.recipients becomes a JSON list: an address may hold a comma ("p6,x"@firm.example.bg),
  so the comma-joined text split wrongly. Old rows are read back with an address-list parser
  (email.utils.getaddresses), which keeps a quoted local part whole; the joined text still
  holds the quotes, so nothing is lost. Text that parser cannot read keeps the old split.
- outbox.outcomes: per recipient, accepted, refused (for good) or deferred (4xx, retried for
  that recipient alone), with the relay's code and text.
- outbox.refused: how many recipients were refused for good, so `status` can count partly
  refused mail. Old sent rows whose last_error names refused recipients ("refused for some
  recipients: a@b: 550 ...") get those recipients recorded as refused.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 18:30:00
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from email.utils import getaddresses
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What the sender before this revision wrote into last_error when some recipients refused.
OLD_PARTIAL_PREFIX = "refused for some recipients: "


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("recipient_list", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("outcomes", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("refused", sa.Integer(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, recipients, state, last_error FROM outbox")).all()
    update = sa.text(
        "UPDATE outbox SET recipient_list = :recipients, outcomes = :outcomes, "
        "refused = :refused WHERE id = :id"
    )
    for id_, joined, state, last_error in rows:
        recipients = split_old_recipients(joined or "")
        outcomes = old_refusals(recipients, last_error) if state == "sent" else {}
        bind.execute(
            update,
            {
                "id": id_,
                "recipients": json.dumps(recipients),
                "outcomes": json.dumps(outcomes),
                "refused": len(outcomes),
            },
        )
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_column("recipients")
        batch_op.alter_column(
            "recipient_list",
            new_column_name="recipients",
            existing_type=sa.JSON(),
            nullable=False,
        )
        batch_op.alter_column("outcomes", existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column(
            "refused", existing_type=sa.Integer(), nullable=False, server_default="0"
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("recipient_text", sa.Text(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, recipients FROM outbox")).all()
    update = sa.text("UPDATE outbox SET recipient_text = :text WHERE id = :id")
    for id_, recipients in rows:
        # The old column could only hold them comma-joined; refusals stay in last_error.
        bind.execute(update, {"id": id_, "text": ",".join(_as_list(recipients))})
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_column("refused")
        batch_op.drop_column("outcomes")
        batch_op.drop_column("recipients")
        batch_op.alter_column(
            "recipient_text", new_column_name="recipients", existing_type=sa.Text(), nullable=False
        )


def split_old_recipients(joined: str) -> list[str]:
    """The addresses of an old comma-joined recipients column, quoted local parts kept whole."""
    parsed = [address for _, address in getaddresses([joined])]
    if parsed and all("@" in address for address in parsed):
        return parsed
    return [address for address in joined.split(",") if address]


def old_refusals(recipients: list[str], last_error: str | None) -> dict[str, dict[str, Any]]:
    """The refusals an old sent row recorded in its last_error, by recipient."""
    if not last_error or not last_error.startswith(OLD_PARTIAL_PREFIX):
        return {}
    details = last_error.removeprefix(OLD_PARTIAL_PREFIX)
    found: dict[str, dict[str, Any]] = {}
    for address in recipients:
        match = re.search(rf"(?:^|; ){re.escape(address)}: (\d{{3}}) ([^;]*)", details)
        if match:
            found[address] = {
                "outcome": "refused",
                "code": int(match.group(1)),
                "text": match.group(2).strip(),
            }
    return found


def _as_list(value: Any) -> list[str]:
    # The JSON column comes back decoded on PostgreSQL and as text on SQLite.
    decoded = json.loads(value) if isinstance(value, str) else value
    return [str(address) for address in decoded or []]
