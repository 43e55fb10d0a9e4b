"""The organisers' queues beyond quarantine: a held answer in full, ignored mail, the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.admin import NotFound, hand_over
from qa_mailer.clock import SystemClock
from qa_mailer.config import Config
from qa_mailer.db import (
    Answer,
    AnswerState,
    InboundMessage,
    MessageState,
    OutboxMail,
    OutboxState,
    Question,
    RecipientOutcome,
    Thread,
)
from qa_mailer.db.engine import session_factory


@dataclass(frozen=True)
class HeldAnswer:
    answer: Answer
    question: Question
    thread: Thread


async def held_answer(engine: AsyncEngine, answer_id: int) -> HeldAnswer:
    """A held answer whole, with the question it answers and who asked it."""
    async with session_factory(engine)() as tx:
        row = (
            await tx.execute(
                select(Answer, Question, Thread)
                .join(Question, Question.id == Answer.question_id)
                .join(Thread, Thread.id == Question.thread_id)
                .where(Answer.id == answer_id, Answer.state == AnswerState.HELD)
            )
        ).first()
    if row is None:
        raise NotFound(f"no held answer A-{answer_id}")
    return HeldAnswer(*row)


@dataclass(frozen=True)
class IgnoredMessage:
    id: int
    received_at: datetime
    sender: str | None  # None: the mail named no sender at all
    subject: str | None
    reason: str


async def ignored_messages(engine: AsyncEngine, limit: int = 100) -> list[IgnoredMessage]:
    """The latest ignored mail (automatic replies, bounces, loops, no sender), oldest first."""
    async with session_factory(engine)() as tx:
        rows = list(
            await tx.scalars(
                select(InboundMessage)
                .where(InboundMessage.state == MessageState.IGNORED)
                .order_by(InboundMessage.id.desc())
                .limit(limit)
            )
        )
    return [
        IgnoredMessage(
            m.id, m.received_at, m.sender or m.envelope_from or None, m.subject, m.reason or ""
        )
        for m in reversed(rows)
    ]


async def outbox_mails(
    engine: AsyncEngine, state: OutboxState | None = None, limit: int = 200
) -> list[OutboxMail]:
    """The latest outgoing mails (in ``state``, if given), oldest first, without their bodies."""
    query = select(OutboxMail).order_by(OutboxMail.id.desc()).limit(limit)
    if state is not None:
        query = query.where(OutboxMail.state == state)
    async with session_factory(engine)() as tx:
        rows = list(await tx.scalars(query))
    return list(reversed(rows))


RETRYABLE = (OutboxState.QUEUED, OutboxState.FAILED)


async def retry_outbox(
    engine: AsyncEngine, config: Config, ids: Sequence[int] | None
) -> tuple[list[int], str]:
    """Send queued or failed mails now (None: every one), and see them on their way.

    A failed mail goes back to the queue with its attempts counted afresh; recipients who
    took it already are not sent it again, those who refused it are tried once more. A mail
    a worker is sending is left to it.
    """
    now = SystemClock().now()
    async with session_factory(engine).begin() as tx:
        query = select(OutboxMail).where(OutboxMail.state.in_(RETRYABLE))
        if ids is not None:
            query = query.where(OutboxMail.id.in_(ids))
        found = list(await tx.scalars(query.order_by(OutboxMail.id).with_for_update()))
        missing = sorted(set(ids or []) - {mail.id for mail in found})
        if missing:
            raise NotFound(f"not queued or failed: mail {', '.join(map(str, missing))}")
        # A mail whose body retention or an erase removed has nothing left to send.
        empty = set(
            await tx.scalars(
                select(OutboxMail.id).where(
                    OutboxMail.id.in_([mail.id for mail in found]),
                    func.length(OutboxMail.raw) == 0,
                )
            )
        )
        if empty and ids is not None:
            raise NotFound(
                f"mail {', '.join(map(str, sorted(empty)))}: its body was removed "
                "(retention or an erase), so it cannot be sent again"
            )
        found = [mail for mail in found if mail.id not in empty]
        for mail in found:
            accepted = {
                address: outcome
                for address, outcome in (mail.outcomes or {}).items()
                if outcome.get("outcome") == RecipientOutcome.ACCEPTED
            }
            # Only a mail still queued or failed is changed: one a worker claimed meanwhile
            # is its own.
            await tx.execute(
                update(OutboxMail)
                .where(OutboxMail.id == mail.id, OutboxMail.state.in_(RETRYABLE))
                .values(
                    state=OutboxState.QUEUED,
                    next_attempt_at=now,
                    attempts=0 if mail.state == OutboxState.FAILED else mail.attempts,
                    outcomes=accepted,
                    refused=0,
                )
                .execution_options(synchronize_session=False)
            )
    retried = [mail.id for mail in found]
    if not retried:
        return retried, "nothing to send"
    return retried, await hand_over(engine, config, retried)
