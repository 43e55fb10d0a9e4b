"""Telling the expert and the organisers that a reply was held.

A reply held as automatic: the notice below. A reply held because it came from an address
that is not the expert's (a private address, or someone else's): the session's experts are
told at their own addresses (private_reply_mail), once per reply (key ``held:M-31``).

A vacation responder's reply carries the token and would otherwise sit unseen in `held list`:
the expert would not know the questions are still open, the organisers not that the expert
is away. One notice per expert's copy (key ``held:D-4``): a responder that answers every mail
cannot make us mail again and again, and the notice carries no reply token, so a reply to it
reaches the organisers and proves nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.answer.outcome import ReplyOutcome
from qa_mailer.classify.incoming import Incoming
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import Dispatch, OutboxKind, OutboxMail
from qa_mailer.route.mails import AUTOMATIC_HEADERS, service_sender
from qa_mailer.send.compose import OutgoingMail, build_mail, new_message_id
from qa_mailer.send.outbox import enqueue, outbox_key
from qa_mailer.templates import Templates

log = logging.getLogger("qa_mailer.answer")

# The experts of a session hear of at most this many replies in their name from other
# addresses per window: a forger with a Message-ID cannot flood them. The rest are in the
# organisers' notice all the same.
PRIVATE_NOTICES_PER_WINDOW = 3
PRIVATE_NOTICE_WINDOW = timedelta(hours=1)


def held_notice_mail(
    config: Config,
    templates: Templates,
    clock: Clock,
    dispatch: Dispatch,
    incoming: Incoming,
    outcome: ReplyOutcome,
) -> OutgoingMail:
    """The notice: to the expert, a copy to the organisers, replies to the organisers."""
    session = config.session(dispatch.session_no)
    refs = ", ".join(q.ref for q in dispatch.questions) or f"session {session.code}"
    reason = outcome.hold_reason or "it looks automatic"
    rendered = templates.render_mail(
        "held.txt",
        session.expert_language,
        session=session,
        service_name=config.service_name,
        subject=incoming.mail.subject or "(no subject)",
        refs=refs,
        reason=reason.partition(": ")[2] or reason,
        held=[f"A-{a.id}" for a in outcome.held],
        expert=incoming.sender,
    )
    original = incoming.mail.message_id
    return build_mail(
        sender=service_sender(config, f"{config.service_name} {session.code}"),
        to=[incoming.sender],
        cc=[o for o in config.organisers if o != incoming.sender],
        subject=rendered.subject or f"Held: your reply looked automatic [{session.code}] {refs}",
        text=rendered.text,
        message_id=new_message_id("held", config.address.domain),
        date=clock.now(),
        reply_to=", ".join(config.organisers) or None,
        in_reply_to=original,
        references=[original] if original else [],
        headers={**AUTOMATIC_HEADERS, "X-Loop": config.address.address},
    )


def private_reply_mail(
    config: Config,
    templates: Templates,
    clock: Clock,
    dispatch: Dispatch,
    incoming: Incoming,
    experts: list[str],
) -> OutgoingMail:
    """To the session's experts at their own addresses: a reply in their name came from
    another address and is held. Nothing of what that reply says is repeated."""
    session = config.session(dispatch.session_no)
    refs = ", ".join(q.ref for q in dispatch.questions) or f"session {session.code}"
    rendered = templates.render_mail(
        "held_private.txt",
        session.expert_language,
        session=session,
        service_name=config.service_name,
        subject=incoming.mail.subject or "(no subject)",
        refs=refs,
        sender=incoming.sender,
        experts=experts,
    )
    return build_mail(
        sender=service_sender(config, f"{config.service_name} {session.code}"),
        to=experts,
        subject=rendered.subject or f"Held: a reply in your name [{session.code}] {refs}",
        text=rendered.text,
        message_id=new_message_id("held", config.address.domain),
        date=clock.now(),
        reply_to=", ".join(config.organisers) or None,
        headers={**AUTOMATIC_HEADERS, "X-Loop": config.address.address},
    )


async def tell_held(
    tx: AsyncSession,
    config: Config,
    templates: Templates,
    clock: Clock,
    dispatch: Dispatch,
    incoming: Incoming,
    outcome: ReplyOutcome,
) -> bool:
    """Queue the notice in the caller's transaction, once per dispatch; True if queued now."""
    ref = f"D-{dispatch.id}"
    # Checked first, not left to the unique key: a failed insert would roll back the whole
    # transaction, the held reply with it.
    if await tx.scalar(
        select(OutboxMail.id).where(OutboxMail.key == outbox_key(OutboxKind.HELD, ref))
    ):
        log.info(
            "%s held as automatic; the notice for %s went out before", incoming.mail.message_id, ref
        )
        return False
    enqueue(
        tx,
        held_notice_mail(config, templates, clock, dispatch, incoming, outcome),
        kind=OutboxKind.HELD,
        ref=ref,
        envelope_from=config.address.address,
        clock=clock,
        dispatch_id=dispatch.id,
    )
    log.info("%s held as automatic; expert and organisers told (%s)", incoming.mail.message_id, ref)
    return True


async def tell_experts_of_private_reply(
    tx: AsyncSession,
    config: Config,
    templates: Templates,
    clock: Clock,
    dispatch: Dispatch,
    incoming: Incoming,
    message_id: int,
    experts: list[str],
) -> bool:
    """Queue private_reply_mail to ``experts`` (their configured addresses), rate-limited.

    Returns False when the session's experts were told of enough such replies within the
    window: this one waits in the organisers' notice only.
    """
    now = clock.now()
    recent = await tx.scalar(
        select(func.count())
        .select_from(OutboxMail)
        .join(Dispatch, Dispatch.id == OutboxMail.dispatch_id)
        .where(
            OutboxMail.kind == OutboxKind.HELD,
            OutboxMail.key.like("held:M-%"),
            OutboxMail.created_at > now - PRIVATE_NOTICE_WINDOW,
            Dispatch.session_no == dispatch.session_no,
        )
    )
    if (recent or 0) >= PRIVATE_NOTICES_PER_WINDOW:
        log.warning(
            "%s held; the experts of VC%d were told of %d replies from other addresses "
            "within the hour, so this one is left to the organisers' notice",
            incoming.mail.message_id,
            dispatch.session_no,
            recent,
        )
        return False
    enqueue(
        tx,
        private_reply_mail(config, templates, clock, dispatch, incoming, experts),
        kind=OutboxKind.HELD,
        ref=f"M-{message_id}",
        envelope_from=config.address.address,
        clock=clock,
        dispatch_id=dispatch.id,
    )
    return True
