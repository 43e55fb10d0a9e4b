"""An expert's reply: matched by its token, checked, split into answers, and published."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from qa_mailer.answer.checks import CheckContext, hold_reason
from qa_mailer.answer.mails import answer_mail
from qa_mailer.answer.outcome import ReplyOutcome
from qa_mailer.answer.receipt import receipt_mail
from qa_mailer.classify.incoming import Incoming
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import (
    Answer,
    AnswerState,
    Dispatch,
    InboundMessage,
    OutboxKind,
    OutboxMail,
    Question,
    QuestionState,
)
from qa_mailer.replies import ParsedReply, QuestionRef, parse_reply
from qa_mailer.replies.leftovers import leftover_reason
from qa_mailer.send.outbox import enqueue
from qa_mailer.templates import Templates

log = logging.getLogger("qa_mailer.answer")


class AnswerDesk:
    def __init__(self, config: Config, templates: Templates, clock: Clock):
        self._config = config
        self._templates = templates
        self._clock = clock

    async def handle(
        self, session: AsyncSession, message_id: int, incoming: Incoming, tokens: list[str]
    ) -> ReplyOutcome:
        """Process an expert's reply (message ``message_id``) inside the caller's transaction.

        The outcome says whether the reply is done with or held for an organiser (its
        ``hold_reason``); the caller records that on the message.
        """
        dispatch = await session.scalar(
            select(Dispatch)
            .where(Dispatch.token.in_(tokens))
            .options(selectinload(Dispatch.questions).selectinload(Question.thread))
            .order_by(Dispatch.id.desc())
        )
        if dispatch is None:
            return self._hold(incoming, "the reply token matches no mail we sent to an expert")
        reason = hold_reason(CheckContext(incoming, dispatch, self._config))
        parsed = parse_reply(
            text=incoming.mail.text_plain,
            html=incoming.mail.html,
            questions=[QuestionRef(q.ref, q.body) for q in dispatch.questions],
        )
        pairs, unmatched = pair_answers(parsed, dispatch.questions)
        answered = {question.id for question, _ in pairs}
        outcome = ReplyOutcome(
            unanswered=[
                q
                for q in dispatch.questions
                if q.id not in answered and q.state != QuestionState.ANSWERED
            ],
            unmatched=unmatched,
        )
        for question, text in pairs:
            # Issue 9: an answer that still looks like mail history waits for confirmation.
            held_because = reason or leftover_reason(text)
            answer = Answer(
                question_id=question.id,
                message_id=message_id,
                expert_address=incoming.sender,
                body=text,
                state=AnswerState.HELD if held_because else AnswerState.PUBLISHED,
                reason=held_because,
                created_at=self._clock.now(),
            )
            answer.question = question
            session.add(answer)
            await session.flush()
            if held_because:
                outcome.held.append(answer)
            else:
                await self.publish(session, answer)
                outcome.published.append(answer)
        if reason is None:
            # Only a proven expert hears back: a receipt to anyone else would tell a stranger
            # what the expert was asked.
            if not pairs:
                self._hold(incoming, "no answer text found in the reply", outcome)
            enqueue(
                session,
                receipt_mail(
                    self._config, self._templates, self._clock, dispatch, incoming, outcome
                ),
                kind=OutboxKind.RECEIPT,
                ref=f"M-{message_id}",
                envelope_from=self._config.address.address,
                clock=self._clock,
            )
            log.info(
                "%s reply from %s answered %s",
                incoming.mail.message_id,
                incoming.sender,
                ", ".join(a.question.ref for a in outcome.published) or "nothing",
            )
            return outcome
        return self._hold(incoming, reason, outcome)

    async def publish(self, session: AsyncSession, answer: Answer) -> OutboxMail:
        """Queue the answer to its participant and mark the question answered.

        The mail's key is the answer's, so an answer is queued once however often it is
        published (two organisers approving it at the same moment).
        """
        question = answer.question
        original = await session.scalar(
            select(InboundMessage.rfc_message_id).where(InboundMessage.id == question.message_id)
        )
        answer.state = AnswerState.PUBLISHED
        answer.published_at = self._clock.now()
        question.state = QuestionState.ANSWERED
        question.answered_at = question.answered_at or self._clock.now()
        row = enqueue(
            session,
            answer_mail(
                self._config,
                self._templates,
                self._clock,
                question,
                question.thread,
                answer,
                original,
            ),
            kind=OutboxKind.ANSWER,
            ref=f"A-{answer.id}",
            envelope_from=self._config.address.address,
            clock=self._clock,
            question_id=question.id,
        )
        await session.flush()
        return row

    def _hold(
        self, incoming: Incoming, reason: str, outcome: ReplyOutcome | None = None
    ) -> ReplyOutcome:
        outcome = outcome or ReplyOutcome()
        outcome.hold_reason = reason
        return outcome


def pair_answers(
    parsed: ParsedReply, questions: list[Question]
) -> tuple[list[tuple[Question, str]], list[str]]:
    """(question, answer text) for each question the reply answers, and the unmatched answers.

    Answers that name a question's reference go to it; with a single question, an answer
    without a reference is its answer, and so is the whole new text when the reply did not
    write under a quote. Answers that name no question of this mail are returned apart, for
    the expert's receipt: they are not published.
    """
    by_ref = {q.ref: q for q in questions}
    pairs: dict[int, tuple[Question, str]] = {}
    unmatched: list[str] = []
    for answer in parsed.answers:
        if not answer.answer.strip():
            continue
        question = by_ref.get(answer.ref or "")
        if question is None and len(questions) == 1 and answer.ref is None:
            question = questions[0]
        if question is None:
            unmatched.append(answer.answer.strip())
            continue
        previous = pairs.get(question.id)
        text = f"{previous[1]}\n\n{answer.answer}" if previous else answer.answer
        pairs[question.id] = (question, text.strip())
    if not pairs and not unmatched and len(questions) == 1 and parsed.new_text.strip():
        pairs[questions[0].id] = (questions[0], parsed.new_text.strip())
    return list(pairs.values()), unmatched
