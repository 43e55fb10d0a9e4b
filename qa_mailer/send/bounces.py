"""Bounces matched to the mail we sent: recorded per address, with the mail and its question.

An address that bounced for good ``outgoing.bounce_limit`` times (in as many bounces) is sent
no more mail: the sender refuses it for each mail before sending, with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.classify.bounces import BounceReport
from qa_mailer.db import Bounce, OutboxMail, RecipientOutcome
from qa_mailer.db.claims import ClaimedMail
from qa_mailer.send.verp import load_key, verify

log = logging.getLogger("qa_mailer.send")


async def record_bounce(
    tx: AsyncSession, message_id: int, report: BounceReport, now: datetime
) -> list[Bounce]:
    """Record each failed address of the bounce ``message_id`` in the caller's transaction.

    The bounced mail is the one the bounce's VERP address names, when its signature holds;
    else the one whose Message-ID the bounce returns; a bounce of mail we did not send (or
    that names none) is recorded by address alone. Matched by VERP, a failed address that is
    not among the mail's recipients (a forwarding address, rewritten on the way) is taken
    for the mail's one recipient. Processing the same bounce again adds nothing.
    """
    sent = await _verp_match(tx, message_id, report)
    by_verp, how = sent is not None, "its VERP address"
    if sent is None and report.original_message_id:
        how = f"its Message-ID {report.original_message_id}"
        sent = (
            await tx.execute(
                select(
                    OutboxMail.id, OutboxMail.question_id, OutboxMail.kind, OutboxMail.recipients
                ).where(OutboxMail.rfc_message_id == report.original_message_id)
            )
        ).first()
    failed = [(a, True) for a in report.permanent] + [(a, False) for a in report.temporary]
    if by_verp:
        failed = _as_recipients(failed, [r.lower() for r in sent.recipients])
    known = set(await tx.scalars(select(Bounce.address).where(Bounce.message_id == message_id)))
    added = []
    for address, permanent in failed:
        if address in known:
            continue
        known.add(address)
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
        ", ".join(f"{a} ({'permanent' if p else 'temporary'})" for a, p in failed),
        f"returns our {sent.kind} mail {sent.id}, found by {how}"
        if sent
        else f"names no mail of ours ({report.original_message_id})",
    )
    return added


async def _verp_match(tx: AsyncSession, message_id: int, report: BounceReport) -> Any:
    """The outbox row the bounce's VERP address names, if its signature holds."""
    if report.verp is None:
        return None
    if not verify(report.verp, await load_key(tx)):
        log.warning(
            "bounce (message %d) came to a VERP address with a wrong signature (mail %d): "
            "not believed; matched by its Message-ID, if any",
            message_id,
            report.verp.outbox_id,
        )
        return None
    return (
        await tx.execute(
            select(
                OutboxMail.id, OutboxMail.question_id, OutboxMail.kind, OutboxMail.recipients
            ).where(OutboxMail.id == report.verp.outbox_id)
        )
    ).first()


def _as_recipients(failed: list[tuple[str, bool]], recipients: list[str]) -> list[tuple[str, bool]]:
    """The failed addresses as the mail's recipients: those the bounce names among them, or,
    for a mail to one recipient, that recipient (the bounce named where it was forwarded)."""
    among = [(a, p) for a, p in failed if a in recipients]
    if among or len(recipients) != 1:
        return among or failed
    return [(recipients[0], any(p for _, p in failed))]


async def bounced_for_good(
    tx: AsyncSession, addresses: Sequence[str], limit: int
) -> dict[str, int]:
    """Of ``addresses``, those with ``limit`` or more permanent bounces, with how many."""
    wanted = sorted({a.lower() for a in addresses})
    if limit <= 0 or not wanted:
        return {}
    rows = await tx.execute(
        select(Bounce.address, func.count(func.distinct(Bounce.message_id)))
        .where(Bounce.address.in_(wanted), Bounce.permanent)
        .group_by(Bounce.address)
        .having(func.count(func.distinct(Bounce.message_id)) >= limit)
    )
    return {address: int(count) for address, count in rows}


def stop_bounced(mail: ClaimedMail, bounced: dict[str, int]) -> ClaimedMail:
    """The mail with each recipient that bounced for good refused before it is sent."""
    outcomes = dict(mail.outcomes)
    for address in mail.recipients:
        count = bounced.get(address.lower())
        if count is None or address in outcomes:
            continue
        outcomes[address] = {
            "outcome": RecipientOutcome.REFUSED,
            "code": None,
            "text": f"not sent: {count} permanent bounces from this address "
            "(`qa-mailer status` lists them)",
        }
        log.warning("%s: not sent to %s, which bounced for good %d times", mail.key, address, count)
    return mail if outcomes == mail.outcomes else replace(mail, outcomes=outcomes)
