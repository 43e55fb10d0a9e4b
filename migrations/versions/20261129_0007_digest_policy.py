"""digest policy: the closing digest of a session is marked

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

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("digest_runs") as batch_op:
        batch_op.add_column(
            sa.Column("closing", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("digest_runs") as batch_op:
        batch_op.drop_column("closing")
