"""An expert's reply: matched by its token, checked, split into answers, and published."""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.answer.checks import authenticated, check_context, held_as_automatic, hold_reason
from qa_mailer.answer.guards import (
    ReplyContext,
    further_answer_reason,
    guard_reason,
    repeated,
)
from qa_mailer.answer.held_notice import tell_experts_of_private_reply, tell_held
from qa_mailer.answer.lookup import (
    UNKNOWN_TOKEN,
    earlier_answers,
    find_dispatch,
    recent_unknown_tokens,
    record_unknown_token,
)
from qa_mailer.answer.mails import answer_mail
from qa_mailer.answer.merged import publish_to_merged
from qa_mailer.answer.outcome import ReplyOutcome
from qa_mailer.answer.receipt import receipt_mail
from qa_mailer.answer.tokens import ReplyKeys
from qa_mailer.classify.incoming import Incoming
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import (
    Answer,
    AnswerState,
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
        self, tx: AsyncSession, message_id: int, incoming: Incoming, keys: ReplyKeys
    ) -> ReplyOutcome:
        """Process an expert's reply (message ``message_id``) inside the caller's transaction.

        The outcome says whether the reply is done with, held for an organiser (its
        ``hold_reason``) or ignored; the caller records that on the message.
        """
        found = await find_dispatch(tx, keys)
        if found is None:
            return await self._unknown_token(tx, message_id, incoming)
        dispatch, carries_token = found
        context = await check_context(tx, incoming, dispatch, self._config)
        vouched = authenticated(context)
        reason = hold_reason(context) or guard_reason(
            ReplyContext(context, carries_token, vouched, self._clock.now())
        )
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
        earlier = await earlier_answers(tx, [question.id for question, _ in pairs])
        for question, text in pairs:
            repeat = repeated(text, earlier.get(question.id, []))
            if repeat is not None:
                # A reply sent again (or the same text from anyone) publishes nothing twice.
                if repeat.state == AnswerState.PUBLISHED:
                    outcome.already_published.append(question)
                else:
                    outcome.already_held.append(question)
                continue
            why = reason or further_answer_reason(question, vouched)
            # Issue 9: an answer that still looks like mail history waits for the expert's
            # correction (or an organiser's approval) instead of going out.
            leftover = None if why else leftover_reason(text)
            held_because = why or leftover
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
            tx.add(answer)
            await tx.flush()
            if leftover:
                outcome.to_correct.append(answer)
            elif held_because:
                outcome.held.append(answer)
            else:
                await self.publish(tx, answer)
                outcome.published.append(answer)
        if reason is None and not pairs:
            self._hold(incoming, "no answer text found in the reply", outcome)
        elif reason is not None:
            self._hold(incoming, reason, outcome)
        automatic = held_as_automatic(reason)
        # The receipt goes to the From address, and only when that is an expert of the
        # session: the expert hears what became of a reply in their name (even a forged one),
        # and a stranger never learns what the expert was asked. A reply held as automatic
        # (a vacation responder) gets the held notice instead, to the expert and organisers.
        if automatic:
            await tell_held(
                tx, self._config, self._templates, self._clock, dispatch, incoming, outcome
            )
            # The organisers had a copy of that notice: the next one to them leaves it out.
            await tx.execute(
                update(InboundMessage)
                .where(InboundMessage.id == message_id)
                .values(organisers_told_at=self._clock.now())
                .execution_options(synchronize_session=False)
            )
        elif outcome.held and incoming.sender not in context.experts and context.experts:
            # From a private address (or a forger's): the experts hear of it at their own
            # addresses, and the sender learns nothing.
            await tell_experts_of_private_reply(
                tx,
                self._config,
                self._templates,
                self._clock,
                dispatch,
                incoming,
                message_id,
                sorted(context.experts),
            )
        elif incoming.sender in context.experts:
            enqueue(
                tx,
                receipt_mail(
                    self._config, self._templates, self._clock, dispatch, incoming, outcome
                ),
                kind=OutboxKind.RECEIPT,
                ref=f"M-{message_id}",
                envelope_from=self._config.address.address,
                clock=self._clock,
            )
        log.info(
            "%s reply from %s answered %s%s",
            incoming.mail.message_id,
            incoming.sender,
            ", ".join(a.question.ref for a in outcome.published) or "nothing",
            "".join(
                f"; {what} {', '.join(q.ref for q in questions)}"
                for what, questions in (
                    ("already published", outcome.already_published),
                    ("already held", outcome.already_held),
                    ("held", [a.question for a in outcome.held]),
                )
                if questions
            ),
        )
        return outcome

    async def _unknown_token(
        self, tx: AsyncSession, message_id: int, incoming: Incoming
    ) -> ReplyOutcome:
        """Hold a reply whose token matches nothing; ignore it when its sender is guessing.

        A sender over the hourly limit is not held reply by reply: the rest are recorded and
        ignored, and `held list` shows them all as one line.
        """
        limit = self._config.answers.unknown_token_limit_per_hour
        now = self._clock.now()
        recent = await recent_unknown_tokens(tx, incoming.sender, now, exclude=message_id)
        over = recent >= limit
        await record_unknown_token(tx, message_id, incoming.sender, now, ignored=over)
        if not over:
            return self._hold(incoming, UNKNOWN_TOKEN)
        if recent == limit:
            log.warning(
                "%s: %s sent more than %d replies with unknown tokens within an hour; "
                "further ones are ignored",
                incoming.mail.message_id,
                incoming.sender or "no address",
                limit,
            )
        return ReplyOutcome(
            ignore_reason=f"{UNKNOWN_TOKEN}; ignored: more than {limit} from this sender "
            "within an hour",
        )

    async def publish(self, session: AsyncSession, answer: Answer) -> list[OutboxMail]:
        """Queue the answer to its participant and mark the question answered.

        The mail's key is the answer's, so an answer is queued once however often it is
        published (two organisers approving it at the same moment). The answer also goes
        to the participants of questions merged into this one; every mail queued is returned.
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
        # Questions an organiser merged into this one get the answer too, each in its thread.
        merged = await publish_to_merged(
            session,
            self._config,
            self._templates,
            self._clock,
            question,
            question.thread.participant_email,
            [answer],
        )
        await session.flush()
        return [row, *merged]

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
