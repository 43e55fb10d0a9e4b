"""An organiser's decision on a held answer: publish it or reject it, exactly once.

The CLI (`held approve`, `held reject`) and an organiser's reply to a notice both come here.
The answer is taken from `held` to its new state by one conditional UPDATE: of two organisers
deciding at the same moment (two processes, two databases sessions), one changes the row and
the other finds it decided, so an answer is published once however often it is approved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from qa_mailer.answer.desk import AnswerDesk
from qa_mailer.db import Answer, AnswerState, InboundMessage, MessageState, OutboxMail, Question


@dataclass(frozen=True)
class Decision:
    """What became of one held answer: ``outcome`` is its state now, ``changed`` if by us."""

    answer_id: int
    question_ref: str | None  # None: no such answer
    outcome: str  # "published", "rejected", "held", or "unknown"
    changed: bool
    queued: list[OutboxMail] = field(default_factory=list)
    # The answer, with its question loaded (None: no such answer).
    answer: Answer | None = None

    @property
    def ref(self) -> str:
        return f"A-{self.answer_id}"


async def decide(tx: AsyncSession, desk: AnswerDesk, answer_id: int, *, approve: bool) -> Decision:
    """Publish (approve) or reject held answer ``answer_id`` in the caller's transaction.

    An answer that is not held (decided already, or no such answer) is left as it is and
    the decision says what it is. A reply is done with when none of its answers is held.
    """
    target = AnswerState.PUBLISHED if approve else AnswerState.REJECTED
    taken = await tx.execute(
        update(Answer)
        .where(Answer.id == answer_id, Answer.state == AnswerState.HELD)
        .values(state=target)
        .execution_options(synchronize_session=False)
    )
    answer = await tx.scalar(
        select(Answer)
        .where(Answer.id == answer_id)
        .options(selectinload(Answer.question).selectinload(Question.thread))
        .execution_options(populate_existing=True)
    )
    if answer is None:
        return Decision(answer_id, None, "unknown", changed=False)
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        return Decision(answer_id, answer.question.ref, answer.state, changed=False, answer=answer)
    queued: list[OutboxMail] = []
    if approve:
        queued = await desk.publish(tx, answer)
        answer.reason = f"approved by an organiser ({answer.reason})"
    await tx.flush()
    still_held = await tx.scalar(
        select(Answer.id).where(
            Answer.message_id == answer.message_id, Answer.state == AnswerState.HELD
        )
    )
    if still_held is None:
        await tx.execute(
            update(InboundMessage)
            .where(
                InboundMessage.id == answer.message_id,
                InboundMessage.state == MessageState.HELD,
            )
            .values(state=MessageState.PROCESSED)
            .execution_options(synchronize_session=False)
        )
    return Decision(
        answer_id, answer.question.ref, target, changed=True, queued=queued, answer=answer
    )
