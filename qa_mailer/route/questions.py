"""Participants' mails become questions: threaded, acknowledged, and sent to the expert.

Everything here happens in the caller's transaction: threads, questions, acknowledgements and
the expert's mails are committed together or not at all. A batch of questions is decided in
memory first (thread, session, country, acknowledgement), then written with one statement per
table, which is what lets the processing stage keep up with parsing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.classify.incoming import Incoming
from qa_mailer.classify.language import LanguageClues, language_for
from qa_mailer.classify.roster import Roster
from qa_mailer.classify.rules import CountryContext, SessionContext, choose_country, choose_session
from qa_mailer.classify.similar import (
    READ_CHARACTERS,
    RECENT_QUESTIONS,
    comparable,
    most_similar,
)
from qa_mailer.classify.threading import Lookup, ThreadIndex, strip_subject, subject_key
from qa_mailer.clock import Clock
from qa_mailer.config import Config
from qa_mailer.db import (
    Dispatch,
    NewQuestion,
    NewThread,
    OutboxKind,
    OutboxMail,
    Question,
    Thread,
)
from qa_mailer.db.ids import allocate_ids_of, table_of
from qa_mailer.replies import trimmed_reply
from qa_mailer.route.dispatch import Batch, dispatch
from qa_mailer.route.mails import acknowledgement
from qa_mailer.send.headers import is_sendable
from qa_mailer.send.outbox import outbox_row
from qa_mailer.states import OPEN_QUESTION_STATES
from qa_mailer.templates import Templates

log = logging.getLogger("qa_mailer.route")


@dataclass(frozen=True)
class Asked:
    """A participant's mail that the pipeline found to be a question."""

    message_id: int  # messages.id
    incoming: Incoming
    text: str  # what the participant wrote, without quoted history and taglines
    # The language detector's work on language_text(incoming, text), done while parsing.
    clues: LanguageClues | None = None


@dataclass(frozen=True)
class Accepted:
    question: NewQuestion
    thread: Thread | NewThread
    follow_up: bool
    session_rule: str
    acknowledged: bool


@dataclass
class _Plan:
    """One question as decided before anything is written."""

    asked: Asked
    question: NewQuestion
    thread: Thread | NewThread
    session_rule: str
    follows: Question | NewQuestion | int | None  # a question of the batch has no id yet
    acknowledge: bool


class QuestionDesk:
    """Takes new questions and follow-ups in."""

    def __init__(self, config: Config, roster: Roster, templates: Templates, clock: Clock):
        self._config = config
        self._roster = roster
        self._templates = templates
        self._clock = clock

    async def accept(self, tx: AsyncSession, asked: Sequence[Asked]) -> list[Accepted]:
        """Store the questions; queue their acknowledgements and their mails to the expert."""
        if not asked:
            return []
        now = self._clock.now()
        index = await ThreadIndex.load(
            tx,
            [
                Lookup(a.incoming.sender, a.incoming.mail.thread_ids, a.incoming.mail.subject)
                for a in asked
            ],
            now,
        )
        recent_acks = await self._recent_acks(tx, {a.incoming.sender for a in asked}, now)
        plans = [self._plan(a, index, recent_acks) for a in asked]
        open_questions = await latest_open_questions(
            tx, {p.thread.session_no for p in plans if p.follows is None}
        )
        await self._write(tx, plans, now, open_questions)
        for plan in plans:
            self._log(plan)
        return [
            Accepted(p.question, p.thread, p.follows is not None, p.session_rule, p.acknowledge)
            for p in plans
        ]

    def _plan(self, asked: Asked, index: ThreadIndex, recent_acks: Counter[str]) -> _Plan:
        config, incoming = self._config, asked.incoming
        mail = incoming.mail
        lookup = Lookup(incoming.sender, mail.thread_ids, mail.subject)
        match = index.find(lookup)
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
        follows: Question | NewQuestion | int | None = None
        thread: Thread | NewThread
        if follow_up is not None:
            thread = follow_up.thread
            follows = follow_up.question or index.latest_question(thread)
        else:
            thread = self._new_thread(incoming, number, session_rule, asked.text, asked.clues)
        question = NewQuestion(
            message_id=asked.message_id,
            session_no=thread.session_no,
            subject=mail.subject or "(no subject)",
            body=asked.text,
            asked_at=incoming.arrived_at,
            attachments=[
                {"filename": a.filename, "content_type": a.content_type, "size": a.size}
                for a in mail.attachments
            ],
        )
        acknowledge = (
            follow_up is None
            and config.acknowledge
            # RFC 3834 asks responders not to answer one sender over and over; a flood of mail
            # (or a loop we failed to recognise) gets at most ack_limit_per_hour of them.
            and recent_acks[incoming.sender] < config.ack_limit_per_hour
            and self._can_acknowledge(asked, incoming.sender)
        )
        if acknowledge:
            recent_acks[incoming.sender] += 1
        index.add(question, thread, mail.message_id)
        return _Plan(asked, question, thread, session_rule, follows, acknowledge)

    def _can_acknowledge(self, asked: Asked, sender: str) -> bool:
        # An address no mail can be written to (one of 300 characters, say) gets no
        # acknowledgement; its question still goes to the expert, instead of failing whole.
        if is_sendable(sender):
            return True
        log.warning(
            "%s: no acknowledgement, the sender's address cannot be written: %r",
            asked.incoming.mail.message_id,
            sender[:100],
        )
        return False

    def _new_thread(
        self,
        incoming: Incoming,
        number: int,
        session_rule: str,
        text: str,
        clues: LanguageClues | None,
    ) -> NewThread:
        country, country_rule = choose_country(
            CountryContext(incoming, self._config.countries, self._roster)
        )
        participant = self._roster.get(incoming.sender)
        language = language_for(
            language_text(incoming, text),
            country,
            participant.language if participant else None,
            clues,
        )
        return NewThread(
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
            language=language,
        )

    async def _recent_acks(
        self, tx: AsyncSession, senders: set[str], now: datetime
    ) -> Counter[str]:
        """How many acknowledgements each sender got in the last hour."""
        if not self._config.acknowledge:
            return Counter()
        rows = await tx.execute(
            select(Thread.participant_email, func.count())
            .join(Question, Question.thread_id == Thread.id)
            .where(
                Thread.participant_email.in_(senders),
                Question.acknowledged_at >= now - timedelta(hours=1),
            )
            .group_by(Thread.participant_email)
        )
        return Counter({sender: count for sender, count in rows})

    def _mark_similar(
        self, plans: list[_Plan], open_questions: dict[int, list[tuple[int, str]]]
    ) -> None:
        """Note the open question each new one resembles (a resend, the same thing reworded)."""
        for plan in plans:
            if plan.follows is not None:
                continue
            candidates = open_questions.setdefault(plan.thread.session_no, [])
            text = comparable(plan.question.body)
            plan.question.similar_to = most_similar(text, candidates)
            assert plan.question.id is not None
            candidates.insert(0, (plan.question.id, text))
            del candidates[RECENT_QUESTIONS:]

    async def _write(
        self,
        tx: AsyncSession,
        plans: list[_Plan],
        now: datetime,
        open_questions: dict[int, list[tuple[int, str]]],
    ) -> None:
        """Write threads, questions and their mails with one statement per table."""
        config = self._config
        new_threads = [p.thread for p in plans if isinstance(p.thread, NewThread)]
        # In batch mode the questions wait for the BatchDispatcher instead.
        each = [p for p in plans if config.session(p.thread.session_no).expert_mail == "each"]
        thread_ids, question_ids, dispatch_ids = await allocate_ids_of(
            tx,
            [
                (table_of(Thread), len(new_threads)),
                (table_of(Question), len(plans)),
                (table_of(Dispatch), len(each)),
            ],
        )
        for thread, number in zip(new_threads, thread_ids, strict=True):
            thread.id = number
        for plan, number in zip(plans, question_ids, strict=True):
            plan.question.id = number
            plan.question.thread_id = plan.thread.id
            plan.question.acknowledged_at = now if plan.acknowledge else None
        for plan in plans:
            follows = plan.follows
            plan.question.follow_up_to = follows if isinstance(follows, int | None) else follows.id
        self._mark_similar(plans, open_questions)
        if new_threads:
            await tx.execute(
                insert(table_of(Thread)), [_columns(t, NewThread.COLUMNS) for t in new_threads]
            )
        await tx.execute(
            insert(table_of(Question)), [_columns(p.question, NewQuestion.COLUMNS) for p in plans]
        )
        acks = [
            outbox_row(
                acknowledgement(
                    config,
                    self._templates,
                    self._clock,
                    p.question,
                    p.thread,
                    p.asked.incoming.mail.message_id,
                ),
                kind=OutboxKind.ACK,
                ref=p.question.ref,
                envelope_from=config.address.address,
                now=now,
                question_id=p.question.id,
            )
            for p in plans
            if p.acknowledge
        ]
        if acks:
            await tx.execute(insert(table_of(OutboxMail)), acks)
        await dispatch(
            tx,
            config,
            self._templates,
            self._clock,
            [Batch(p.thread.session_no, [(p.question, p.thread)]) for p in each],
            dispatch_ids,
        )

    def _log(self, plan: _Plan) -> None:
        thread, question = plan.thread, plan.question
        log.info(
            "%s %s from %s: session VC%d (%s), country %s (%s)%s",
            plan.asked.incoming.mail.message_id,
            question.ref,
            plan.asked.incoming.sender,
            thread.session_no,
            plan.session_rule,
            thread.country or "unassigned",
            thread.country_source or "-",
            f", follow-up to Q-{question.follow_up_to}" if plan.follows is not None else "",
        )


def _columns(row: object, names: tuple[str, ...]) -> dict[str, object]:
    return {name: getattr(row, name) for name in names}


async def latest_open_questions(
    tx: AsyncSession, sessions: set[int]
) -> dict[int, list[tuple[int, str]]]:
    """The latest open questions of each session, as (id, comparable text), newest first.

    Each session's latest of each open state are read from the end of that state's range of
    ix_questions_state_session_id, RECENT_QUESTIONS at most: the work does not grow with the
    number of open questions (tests/integration/test_organise_questions.py). One statement
    for every session of the batch, and only the start of a text is read: all that is
    compared.
    """
    found: dict[int, list[tuple[int, str]]] = {number: [] for number in sessions}
    if not sessions:
        return found
    latest = [
        select(Question.session_no, Question.id, func.substr(Question.body, 1, READ_CHARACTERS))
        .where(
            Question.session_no == number,
            Question.state == state,
            Question.follow_up_to.is_(None),
        )
        .order_by(Question.id.desc())
        .limit(RECENT_QUESTIONS)
        for number in sorted(sessions)
        for state in OPEN_QUESTION_STATES
    ]
    rows = await tx.execute(union_all(*(select(each.subquery()) for each in latest)))
    # Up to RECENT_QUESTIONS of each state: the latest of them all.
    for number, question_id, body in sorted(rows, key=lambda row: row[1], reverse=True):
        if len(found[number]) < RECENT_QUESTIONS:
            found[number].append((question_id, comparable(body)))
    return found


def language_text(incoming: Incoming, text: str) -> str:
    """What a question's language is told from: its subject (without "Re:" and tags) and text."""
    return f"{strip_subject(incoming.mail.subject)}\n{text}"


def question_text(incoming: Incoming) -> str:
    """What the participant wrote, without the quoted history and phone taglines below it."""
    mail = incoming.mail
    trimmed = trimmed_reply(text=mail.text_plain, html=mail.html)
    return trimmed or mail.text.strip() or "(empty message)"
