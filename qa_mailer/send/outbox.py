"""The transactional outbox: a mail is a row written with the state change that caused it."""

from __future__ import annotations

from email.message import Message
from email.policy import compat32
from email.utils import getaddresses

from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.clock import Clock
from qa_mailer.db import OutboxKind, OutboxMail, OutboxState

# The bytes as they go on the wire: CRLF line ends.
_WIRE = compat32.clone(linesep="\r\n")


def enqueue(
    session: AsyncSession,
    mail: Message,
    *,
    kind: OutboxKind,
    envelope_from: str,
    clock: Clock,
    question_id: int | None = None,
    dispatch_id: int | None = None,
) -> OutboxMail:
    """Add ``mail`` to the outbox in the caller's transaction; it is sent after the commit."""
    recipients = [
        address for _, address in getaddresses(mail.get_all("To", []) + mail.get_all("Cc", []))
    ]
    message_id = mail["Message-ID"]
    assert message_id, "every outgoing mail carries its final Message-ID"
    row = OutboxMail(
        message_id=str(message_id),
        kind=kind,
        question_id=question_id,
        dispatch_id=dispatch_id,
        envelope_from=envelope_from,
        recipients=",".join(recipients),
        raw=mail.as_bytes(policy=_WIRE),
        state=OutboxState.QUEUED,
        attempts=0,
        next_attempt_at=clock.now(),
        created_at=clock.now(),
    )
    session.add(row)
    return row
