"""A participant's mail becomes a question: threaded, acknowledged, and sent to the expert.

Everything here happens in the caller's transaction: the thread, the question, the
acknowledgement and the expert's mail are committed together or not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.classify.incoming import Incoming
from qa_mailer.classify.roster import Roster
from qa_mailer.classify.rules import CountryContext, SessionContext, choose_country, choose_session
from qa_mailer.classify.threading import ThreadMatch, find_thread, subject_key
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import (
    InboundMessage,
    OutboxKind,
    OutboxMail,
    Question,
    QuestionState,
    Thread,
)
from qa_mailer.replies import parse_reply
from qa_mailer.route.dispatch import dispatch
from qa_mailer.route.mails import acknowledgement
from qa_mailer.send.outbox import enqueue
from qa_mailer.templates import Templates

log = logging.getLogger("qa_mailer.route")


@dataclass(frozen=True)
class Accepted:
    question: Question
    follow_up: bool


class QuestionDesk:
    """Takes new questions and follow-ups in."""

    def __init__(self, config: Config, roster: Roster, templates: Templates, clock: Clock):
        self._config = config
        self._roster = roster
        self._templates = templates
        self._clock = clock

    async def accept(
        self, session: AsyncSession, message: InboundMessage, incoming: Incoming
    ) -> Accepted:
        """Store the question, queue its acknowledgement and its mail to the expert."""
        config = self._config
        mail = incoming.mail
        match = await find_thread(
            session,
            sender=incoming.sender,
            message_ids=mail.thread_ids,
            subject=mail.subject,
            now=self._clock.now(),
        )
        number, session_rule = choose_session(
            SessionContext(
                incoming,
                config.sessions,
                config.address,
                match.thread.session_no if match else None,
            )
        )
        own = match if match and match.thread.participant_email == incoming.sender else None
        # A follow-up stays in its thread unless it names another session.
        follow_up = own if own is not None and own.thread.session_no == number else None
        if follow_up is not None:
            thread = follow_up.thread
        else:
            thread = await self._new_thread(session, incoming, number, session_rule)
        question = Question(
            thread_id=thread.id,
            message_id=message.id,
            follow_up_to=await self._follow_up_to(session, follow_up) if follow_up else None,
            subject=mail.subject or "(no subject)",
            body=question_text(incoming),
            state=QuestionState.NEW,
            asked_at=message.received_at,
        )
        session.add(question)
        await session.flush()
        if (
            follow_up is None
            and config.acknowledge
            and await self._may_acknowledge(session, incoming.sender)
        ):
            enqueue(
                session,
                acknowledgement(
                    config, self._templates, self._clock, question, thread, mail.message_id
                ),
                kind=OutboxKind.ACK,
                envelope_from=config.address.address,
                clock=self._clock,
                question_id=question.id,
            )
        if config.session(thread.session_no).expert_mail == "each":
            await dispatch(
                session,
                config,
                self._templates,
                self._clock,
                thread.session_no,
                [(question, thread)],
            )
        # In batch mode the question waits for the BatchDispatcher.
        log.info(
            "%s %s from %s: session VC%d (%s), country %s (%s)%s",
            mail.message_id,
            question.ref,
            incoming.sender,
            number,
            session_rule,
            thread.country or "unassigned",
            thread.country_source or "-",
            f", follow-up to Q-{question.follow_up_to}" if follow_up else "",
        )
        return Accepted(question, follow_up is not None)

    async def _new_thread(
        self, session: AsyncSession, incoming: Incoming, number: int, session_rule: str
    ) -> Thread:
        country, country_rule = choose_country(
            CountryContext(incoming, self._config.countries, self._roster)
        )
        participant = self._roster.get(incoming.sender)
        thread = Thread(
            session_no=number,
            session_source=session_rule,
            country=country,
            country_source=country_rule,
            participant_email=incoming.sender,
            participant_name=(participant.name if participant else "")
            or incoming.mail.from_name
            or incoming.sender,
            subject_key=subject_key(incoming.mail.subject),
            created_at=self._clock.now(),
        )
        session.add(thread)
        await session.flush()
        return thread

    async def _follow_up_to(self, session: AsyncSession, match: ThreadMatch) -> int | None:
        if match.question is not None:
            return match.question.id
        return await session.scalar(
            select(func.max(Question.id)).where(Question.thread_id == match.thread.id)
        )

    async def _may_acknowledge(self, session: AsyncSession, sender: str) -> bool:
        # RFC 3834 asks responders not to answer one sender over and over; a flood of mail (or
        # a loop we failed to recognise) gets at most ack_limit_per_hour acknowledgements.
        recent = await session.scalar(
            select(func.count())
            .select_from(OutboxMail)
            .where(
                OutboxMail.kind == OutboxKind.ACK,
                OutboxMail.recipients == sender,
                OutboxMail.created_at >= self._clock.now() - timedelta(hours=1),
            )
        )
        return (recent or 0) < self._config.ack_limit_per_hour


def question_text(incoming: Incoming) -> str:
    """What the participant wrote, without the quoted history and phone taglines below it."""
    mail = incoming.mail
    trimmed = parse_reply(text=mail.text_plain, html=mail.html).reply
    return trimmed or mail.text.strip() or "(empty message)"
