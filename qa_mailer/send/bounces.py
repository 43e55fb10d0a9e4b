"""Bounces matched to the mail we sent: recorded per address, with the mail and its question."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.classify.bounces import BounceReport
from qa_mailer.db import Bounce, OutboxMail

log = logging.getLogger("qa_mailer.send")


async def record_bounce(
    tx: AsyncSession, message_id: int, report: BounceReport, now: datetime
) -> list[Bounce]:
    """Record each failed address of the bounce ``message_id`` in the caller's transaction.

    The bounced mail is found by the Message-ID the bounce returns; a bounce of mail we did
    not send (or that names none) is recorded by address alone. Processing the same bounce
    again adds nothing.
    """
    sent = None
    if report.original_message_id:
        sent = (
            await tx.execute(
                select(OutboxMail.id, OutboxMail.question_id, OutboxMail.kind).where(
                    OutboxMail.rfc_message_id == report.original_message_id
                )
            )
        ).first()
    known = set(await tx.scalars(select(Bounce.address).where(Bounce.message_id == message_id)))
    added = []
    for address, permanent in [(a, True) for a in report.permanent] + [
        (a, False) for a in report.temporary
    ]:
        if address in known:
            continue
        bounce = Bounce(
            message_id=message_id,
            address=address,
            permanent=permanent,
            outbox_id=sent.id if sent else None,
            question_id=sent.question_id if sent else None,
            kind=sent.kind if sent else None,
            created_at=now,
        )
        tx.add(bounce)
        added.append(bounce)
    log.warning(
        "bounce (message %d): %s; %s",
        message_id,
        report.describe(),
        f"returns our {sent.kind} mail {report.original_message_id}"
        if sent
        else f"names no mail of ours ({report.original_message_id})",
    )
    return added
