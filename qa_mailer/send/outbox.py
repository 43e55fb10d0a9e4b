"""The transactional outbox: a mail is a row written with the state change that caused it.

Each row has a key saying what it is for ("ack:Q-17"); the key is unique, so queuing the same
mail twice (a replayed message, two organisers approving one answer) fails in the transaction
that tried, and nothing is mailed twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.clock import Clock
from qa_mailer.db import OutboxKind, OutboxMail, OutboxState
from qa_mailer.send.compose import OutgoingMail


def outbox_key(kind: OutboxKind, ref: str) -> str:
    """The key of the mail of ``kind`` for ``ref``: "ack:Q-17", "route:D-4", "digest:R-2"."""
    return f"{kind.value}:{ref}"


def outbox_row(
    mail: OutgoingMail,
    *,
    kind: OutboxKind,
    ref: str,
    envelope_from: str,
    now: datetime,
    question_id: int | None = None,
    dispatch_id: int | None = None,
) -> dict[str, Any]:
    """The outbox row of ``mail`` as column values, for inserting many at once."""
    return {
        "key": outbox_key(kind, ref),
        "rfc_message_id": mail.message_id,
        "kind": kind,
        "question_id": question_id,
        "dispatch_id": dispatch_id,
        "envelope_from": envelope_from,
        "recipients": list(mail.recipients),
        "outcomes": {},
        "refused": 0,
        "raw": mail.raw,
        "state": OutboxState.QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def enqueue(
    tx: AsyncSession,
    mail: OutgoingMail,
    *,
    kind: OutboxKind,
    ref: str,
    envelope_from: str,
    clock: Clock,
    question_id: int | None = None,
    dispatch_id: int | None = None,
) -> OutboxMail:
    """Add ``mail`` to the outbox in the caller's transaction; it is sent after the commit."""
    row = OutboxMail(
        **outbox_row(
            mail,
            kind=kind,
            ref=ref,
            envelope_from=envelope_from,
            now=clock.now(),
            question_id=question_id,
            dispatch_id=dispatch_id,
        )
    )
    tx.add(row)
    return row
