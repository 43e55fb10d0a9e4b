"""languages: each participant's language on their thread; attachments listed on the question

- threads.language: the language the participant is written to (the roster's, else the one
  their question is written in, else their country's, else English). Threads from before
  this revision get their country's language, the best there is without re-reading mail.
- questions.attachments: the participant's attachments (name, type, size) as the expert's
  copy lists them; [] for questions from before.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 18:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# This revision's own copy of the countries' languages (a later change must not rewrite it).
COUNTRY_LANGUAGES = {"BG": "bg", "HR": "hr", "RS": "sr", "TR": "tr", "RU": "ru"}


def upgrade() -> None:
    with op.batch_alter_table("threads") as batch_op:
        batch_op.add_column(
            sa.Column("language", sa.String(length=16), nullable=False, server_default="en")
        )
    for country, language in COUNTRY_LANGUAGES.items():
        op.execute(
            sa.text("UPDATE threads SET language = :language WHERE country = :country").bindparams(
                language=language, country=country
            )
        )
    with op.batch_alter_table("questions") as batch_op:
        batch_op.add_column(
            sa.Column("attachments", sa.JSON(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("questions") as batch_op:
        batch_op.drop_column("attachments")
    with op.batch_alter_table("threads") as batch_op:
        batch_op.drop_column("language")
