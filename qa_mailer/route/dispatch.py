"""Putting questions before the expert: one mail, one token, one or many [Q-n] anchors."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import Dispatch, OutboxKind, Question, Thread
from qa_mailer.route.mails import expert_mail
from qa_mailer.send.outbox import enqueue
from qa_mailer.templates import Templates


def new_token() -> str:
    """An unguessable reply token: 80 random bits, in characters every mail system keeps."""
    return secrets.token_hex(10)


async def dispatch(
    session: AsyncSession,
    config: Config,
    templates: Templates,
    clock: Clock,
    session_no: int,
    questions: Sequence[tuple[Question, Thread]],
) -> Dispatch:
    """Record a dispatch of ``questions`` and queue its mail to the session's experts."""
    experts = config.session(session_no).experts
    sent = Dispatch(
        token=new_token(), session_no=session_no, experts=",".join(experts), created_at=clock.now()
    )
    sent.questions = [question for question, _ in questions]
    session.add(sent)
    await session.flush()
    enqueue(
        session,
        expert_mail(config, templates, clock, sent, questions),
        kind=OutboxKind.ROUTE,
        envelope_from=config.address.address,
        clock=clock,
        question_id=questions[0][0].id if len(questions) == 1 else None,
        dispatch_id=sent.id,
    )
    return sent
