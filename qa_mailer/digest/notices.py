"""Telling the organisers what waits for them: held replies and quarantined messages.

A held reply or a quarantined message used to show only as a log line. Now every such message
is listed in a notice to the organisers, with what to do about it and the command that does
it. Notices are batched and rate-limited: at most one per ``digest.notice_minutes``, listing
every message not yet told, so a burst of held mail makes one mail, not a hundred.

Exactly once: in one transaction the notice marks its messages told (``organisers_told_at``,
only where still unset, and every one of them or none) and queues itself under the key
``notice:M-<first message>@<time>``; a second process that picked the same messages finds them
taken and rolls back. A release from quarantine or from being held clears the mark.

A notice that lists held answers carries a token in its Reply-To (``notice_tokens``, with
the answers it lists): an organiser may approve or reject them by replying
(organise/commands.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from qa_mailer.answer.tokens import new_token, notice_reply_address
from qa_mailer.backoff import every
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import (
    Answer,
    AnswerState,
    InboundMessage,
    MessageState,
    NoticeToken,
    OutboxKind,
    OutboxMail,
)
from qa_mailer.db.engine import SessionFactory
from qa_mailer.route.mails import service_sender
from qa_mailer.send.compose import OutgoingMail, build_mail, new_message_id
from qa_mailer.send.outbox import enqueue
from qa_mailer.templates import Templates

log = logging.getLogger("qa_mailer.digest")

CHECK_SECONDS = 10.0
# One notice lists at most this many messages; the rest go in the next one.
MOST_PER_NOTICE = 100
WAITING_FOR_ORGANISERS = (MessageState.HELD, MessageState.QUARANTINED)


@dataclass(frozen=True)
class HeldAnswer:
    ref: str
    question: str
    reason: str


@dataclass(frozen=True)
class WaitingMessage:
    """A held or quarantined message, as the notice shows it."""

    ref: str  # M-31
    number: int
    state: str
    sender: str
    subject: str
    reason: str
    received_at: str
    answers: tuple[HeldAnswer, ...]


class _Taken(Exception):
    """Another process told the organisers of these messages first."""


def notice_mail(
    config: Config,
    templates: Templates,
    clock: Clock,
    messages: list[WaitingMessage],
    token: str | None = None,
) -> OutgoingMail:
    """The notice in the organisers' language.

    With a ``token`` (the notice lists held answers), replies go to the token's address and
    may approve or reject them (organise/commands.py); without, to the organisers.
    """
    held = [m for m in messages if m.state == MessageState.HELD]
    quarantined = [m for m in messages if m.state == MessageState.QUARANTINED]
    rendered = templates.render_mail(
        "notice.txt",
        config.organiser_language,
        service_name=config.service_name,
        held=held,
        quarantined=quarantined,
        timezone=str(config.digest.timezone.key),
        by_reply=token is not None,
        token_days=config.answers.token_valid_days,
    )
    return build_mail(
        sender=service_sender(config),
        to=list(config.organisers),
        subject=rendered.subject or "Mail waits for an organiser",
        text=rendered.text,
        message_id=new_message_id("notice", config.address.domain),
        date=clock.now(),
        reply_to=(
            notice_reply_address(token, config)
            if token is not None
            else ", ".join(config.organisers) or None
        ),
        headers={"Auto-Submitted": "auto-generated", "X-Loop": config.address.address},
    )


async def tell_organisers(
    tx: AsyncSession, config: Config, templates: Templates, clock: Clock
) -> list[int]:
    """Queue a notice of the messages not yet told, in the caller's transaction.

    Returns the numbers of the messages told; [] when there is nothing to tell or the last
    notice is too recent. Raises _Taken when another process marked any of them first.
    """
    now = clock.now()
    last = await tx.scalar(
        select(func.max(OutboxMail.created_at)).where(
            OutboxMail.kind == OutboxKind.NOTICE,
            # An alert that the service stopped (alerts.py) does not hold this notice back.
            ~OutboxMail.key.startswith(f"{OutboxKind.NOTICE.value}:alert-"),
        )
    )
    if last is not None and now - last < config.digest.notice_every:
        return []
    rows = list(
        await tx.scalars(
            select(InboundMessage)
            .where(
                InboundMessage.state.in_(WAITING_FOR_ORGANISERS),
                InboundMessage.organisers_told_at.is_(None),
            )
            .order_by(InboundMessage.id)
            .limit(MOST_PER_NOTICE)
        )
    )
    if not rows:
        return []
    ids = [m.id for m in rows]
    held_answers: dict[int, list[HeldAnswer]] = {}
    answers: list[int] = []
    for answer in await tx.scalars(
        select(Answer)
        .where(Answer.message_id.in_(ids), Answer.state == AnswerState.HELD)
        .options(selectinload(Answer.question))
        .order_by(Answer.id)
    ):
        held_answers.setdefault(answer.message_id, []).append(
            HeldAnswer(f"A-{answer.id}", answer.question.ref, answer.reason or "")
        )
        answers.append(answer.id)
    marked = await tx.execute(
        update(InboundMessage)
        .where(InboundMessage.id.in_(ids), InboundMessage.organisers_told_at.is_(None))
        .values(organisers_told_at=now)
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount != len(ids):  # type: ignore[attr-defined]
        raise _Taken
    zone = config.digest.timezone
    waiting = [
        WaitingMessage(
            ref=f"M-{m.id}",
            number=m.id,
            state=m.state,
            sender=m.sender or m.envelope_from or "(unknown sender)",
            subject=m.subject or "(no subject)",
            reason=m.reason or "",
            received_at=m.received_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            answers=tuple(held_answers.get(m.id, ())),
        )
        for m in rows
    ]
    # The token lets a reply decide the held answers listed here, and no others.
    token = new_token() if answers else None
    row = enqueue(
        tx,
        notice_mail(config, templates, clock, waiting, token),
        kind=OutboxKind.NOTICE,
        # A message released and held again is told again: the time keeps the keys apart.
        ref=f"M-{ids[0]}@{now:%Y%m%d%H%M%S}",
        envelope_from=config.address.address,
        clock=clock,
    )
    if token is not None:
        await tx.flush()
        tx.add(
            NoticeToken(
                token=token,
                outbox_id=row.id,
                answers=answers,
                created_at=now,
                expires_at=now + timedelta(days=config.answers.token_valid_days),
            )
        )
    return ids


class OrganiserNotices:
    """Checks every few seconds for held and quarantined mail the organisers have not heard of."""

    def __init__(
        self,
        config: Config,
        sessions: SessionFactory,
        templates: Templates,
        clock: Clock,
        on_outbox: Callable[[], None] = lambda: None,
    ):
        self._config = config
        self._sessions = sessions
        self._templates = templates
        self._clock = clock
        self._on_outbox = on_outbox

    async def run(self, stop: asyncio.Event) -> None:
        await every(stop, CHECK_SECONDS, self.send_due, log, "the organisers' notice")

    async def send_due(self) -> list[int]:
        """Queue a notice if one is due; return the numbers of the messages it tells of."""
        if not self._config.digest.notices or not self._config.organisers:
            return []
        try:
            async with self._sessions.begin() as tx:
                told = await tell_organisers(tx, self._config, self._templates, self._clock)
        except (_Taken, IntegrityError):
            log.info("the organisers were told of these messages by another process")
            return []
        if told:
            log.info(
                "organisers told of %d message(s) waiting for them: %s",
                len(told),
                ", ".join(f"M-{n}" for n in told),
            )
            self._on_outbox()
        return told
