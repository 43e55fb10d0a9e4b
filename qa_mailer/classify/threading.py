"""Follow-ups join their question's thread: by Message-ID references, a [Q-n] tag, or subject."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from qa_mailer.db import InboundMessage, OutboxMail, Question, Thread

# Reply and forward prefixes in English and the programme's languages, plus the common European
# ones mail clients write: Re, Fwd, AW, WG, SV, Odp, Ответ, Отв, Отг, Одг, Odg, Ynt, Yanıt, Cevap...
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|odp|tr|rif|r|antw|ynt|yanıt|yanit|cevap|ilt|iletilen"
    r"|odg|odgovor|prosl|fw|ответ|отв|отг|отговор|одг|одговор|пер|пересл)"
    r"\.?\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)
_TAGS = re.compile(r"\[(?:q-\d+|vc\s*\d+|[a-z]{2})\]\s*", re.IGNORECASE)
_REFERENCE = re.compile(r"(?<![\w-])Q-(\d{1,9})(?!\w)")

FOLLOW_UP_WINDOW = timedelta(days=60)


def subject_key(subject: str) -> str:
    """The subject without reply prefixes, our tags and case: what a follow-up keeps."""
    previous = None
    text = subject
    while previous != text:
        previous = text
        text = _TAGS.sub("", _PREFIX.sub("", text)).strip()
    return " ".join(text.casefold().split())


def references_in(subject: str) -> list[int]:
    """Question numbers mentioned as Q-17 in a subject."""
    return [int(m.group(1)) for m in _REFERENCE.finditer(subject)]


@dataclass(frozen=True)
class ThreadMatch:
    """The thread a mail belongs to, and the question it answers to, when known."""

    thread: Thread
    question: Question | None
    how: str


async def find_thread(
    session: AsyncSession,
    *,
    sender: str,
    message_ids: tuple[str, ...],
    subject: str,
    now: datetime,
) -> ThreadMatch | None:
    """Find the thread this mail follows up, by references, by [Q-n], then by subject.

    A match by reference may belong to another participant (someone replying to a forwarded
    answer); the caller decides what that means. Matches by tag or subject are only accepted
    from the thread's own participant.
    """
    if message_ids:
        question = await _question_by_message_ids(session, message_ids)
        if question is not None:
            return ThreadMatch(question.thread, question, "references")
    numbers = references_in(subject)
    if numbers:
        question = await session.scalar(
            select(Question)
            .join(Thread)
            .where(Question.id.in_(numbers), Thread.participant_email == sender)
            .options(selectinload(Question.thread))
            .order_by(Question.id.desc())
        )
        if question is not None:
            return ThreadMatch(question.thread, question, "subject-reference")
    key = subject_key(subject)
    if key:
        thread = await session.scalar(
            select(Thread)
            .where(
                Thread.participant_email == sender,
                Thread.subject_key == key,
                Thread.created_at >= now - FOLLOW_UP_WINDOW,
            )
            .order_by(Thread.id.desc())
        )
        if thread is not None:
            return ThreadMatch(thread, None, "subject")
    return None


async def _question_by_message_ids(
    session: AsyncSession, message_ids: tuple[str, ...]
) -> Question | None:
    ids = list(message_ids)
    # The participant's own earlier mail (their client threads on it), newest first...
    question = await session.scalar(
        select(Question)
        .join(InboundMessage, Question.message_id == InboundMessage.id)
        .where(InboundMessage.message_id.in_(ids))
        .options(selectinload(Question.thread))
        .order_by(Question.id.desc())
    )
    if question is not None:
        return question
    # ...or a mail we sent about a question: its acknowledgement or its answer.
    return await session.scalar(
        select(Question)
        .join(OutboxMail, OutboxMail.question_id == Question.id)
        .where(OutboxMail.message_id.in_(ids))
        .options(selectinload(Question.thread))
        .order_by(Question.id.desc())
    )
