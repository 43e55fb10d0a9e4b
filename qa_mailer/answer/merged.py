"""Answers for merged questions: what reaches one question reaches those merged into it."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.answer.mails import answer_mail
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import (
    Answer,
    InboundMessage,
    OutboxKind,
    OutboxMail,
    Question,
    QuestionState,
    Thread,
)
from qa_mailer.send.outbox import enqueue
from qa_mailer.templates import Templates

log = logging.getLogger("qa_mailer.answer")


def merged_key(answer: Answer, question: Question) -> str:
    """The outbox ref of ``answer`` sent for a question merged into its own: "A-9/Q-12"."""
    return f"A-{answer.id}/{question.ref}"


async def publish_to_merged(
    tx: AsyncSession,
    config: Config,
    templates: Templates,
    clock: Clock,
    main: Question,
    main_email: str,
    answers: list[Answer],
    only: Question | None = None,
) -> list[OutboxMail]:
    """Queue ``answers`` (published to ``main``) to every question merged into ``main``.

    Each participant gets them as a reply to their own mail, with their own question
    quoted; a participant who asked twice (their resend merged into their first question)
    gets nothing more. The merged questions are then answered. ``only`` limits it to one
    merged question (the one an organiser just merged, after the answer).
    """
    query = (
        select(Question, Thread, InboundMessage.rfc_message_id)
        .join(Thread, Thread.id == Question.thread_id)
        .join(InboundMessage, InboundMessage.id == Question.message_id)
        .where(Question.merged_into == main.id)
        .order_by(Question.id)
    )
    if only is not None:
        query = query.where(Question.id == only.id)
    queued: list[OutboxMail] = []
    reached = {main_email}
    for question, thread, original in (await tx.execute(query)).all():
        if thread.participant_email not in reached:
            reached.add(thread.participant_email)
            for answer in answers:
                queued.append(
                    enqueue(
                        tx,
                        answer_mail(config, templates, clock, question, thread, answer, original),
                        kind=OutboxKind.ANSWER,
                        ref=merged_key(answer, question),
                        envelope_from=config.address.address,
                        clock=clock,
                        question_id=question.id,
                    )
                )
            log.info("%s: the answer to %s queued for it (merged)", question.ref, main.ref)
        question.state = QuestionState.ANSWERED
        question.answered_at = question.answered_at or clock.now()
    await tx.flush()
    return queued
