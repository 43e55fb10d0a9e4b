"""Questions as organisers sort them: list with filters, show one, move, close, roster changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from qa_mailer.clock import SystemClock
from qa_mailer.config import Config
from qa_mailer.db import (
    Answer,
    AnswerState,
    Dispatch,
    OutboxMail,
    Question,
    QuestionState,
    Thread,
    dispatch_questions,
)
from qa_mailer.db.engine import session_factory
from qa_mailer.errors import NotFound
from qa_mailer.states import OPEN_QUESTION_STATES

# Merging publishes answers (templates, the answer desk) and the roster is read only to apply
# it: those import inside their functions, and `questions list` loads the models alone.
if TYPE_CHECKING:
    from qa_mailer.classify.roster import Roster

# What `session_source` and `country_source` say once an organiser has sorted a thread.
BY_ORGANISER = "organiser"
# How `--country` names a question no rule could give a country.
UNASSIGNED_NAMES = frozenset({"unassigned", "none", "--"})


@dataclass(frozen=True)
class QuestionFilter:
    """What `questions list` narrows the list to; None (or "") keeps everything."""

    session: int | None = None
    country: str | None = None  # a code, or "unassigned"
    state: str | None = None
    participant: str | None = None  # part of the address or the name
    text: str | None = None  # part of the subject or the question


@dataclass(frozen=True)
class QuestionRow:
    id: int
    session_no: int
    country: str | None
    state: str
    participant_email: str
    participant_name: str
    subject: str
    asked_at: datetime
    follow_up_to: int | None

    @property
    def ref(self) -> str:
        return f"Q-{self.id}"


async def list_questions(engine: AsyncEngine, where: QuestionFilter) -> list[QuestionRow]:
    """The questions that pass every filter given, oldest first."""
    query = select(Question, Thread).join(Thread, Thread.id == Question.thread_id)
    if where.session is not None:
        query = query.where(Thread.session_no == where.session)
    if where.country:
        if where.country.lower() in UNASSIGNED_NAMES:
            query = query.where(Thread.country.is_(None))
        else:
            query = query.where(Thread.country == where.country.upper())
    if where.state:
        query = query.where(Question.state == where.state)
    async with session_factory(engine)() as tx:
        rows = (await tx.execute(query.order_by(Question.id))).all()
    # Names and text are matched here, not in SQL: SQLite folds the case of ASCII letters
    # only, and a Cyrillic search must work on both databases alike.
    found = []
    for question, thread in rows:
        if where.participant and not _contains(
            where.participant, thread.participant_email, thread.participant_name
        ):
            continue
        if where.text and not _contains(where.text, question.subject, question.body):
            continue
        found.append(
            QuestionRow(
                id=question.id,
                session_no=thread.session_no,
                country=thread.country,
                state=question.state,
                participant_email=thread.participant_email,
                participant_name=thread.participant_name,
                subject=question.subject,
                asked_at=question.asked_at,
                follow_up_to=question.follow_up_to,
            )
        )
    return found


def _contains(needle: str, *haystacks: str) -> bool:
    folded = needle.casefold()
    return any(folded in haystack.casefold() for haystack in haystacks)


@dataclass(frozen=True)
class QuestionDetail:
    """One question with its thread, its answers and every mail sent for it."""

    question: Question
    thread: Thread
    thread_questions: list[Question]
    answers: list[Answer]
    dispatches: list[Dispatch]
    mails: list[OutboxMail]


async def show_question(engine: AsyncEngine, question_id: int) -> QuestionDetail:
    async with session_factory(engine)() as tx:
        question = await _question(tx, question_id)
        thread = await tx.get_one(Thread, question.thread_id)
        in_thread = list(
            await tx.scalars(
                select(Question).where(Question.thread_id == thread.id).order_by(Question.id)
            )
        )
        answers = list(
            await tx.scalars(
                select(Answer).where(Answer.question_id == question_id).order_by(Answer.id)
            )
        )
        dispatch_ids = select(dispatch_questions.c.dispatch_id).where(
            dispatch_questions.c.question_id == question_id
        )
        dispatches = list(await tx.scalars(select(Dispatch).where(Dispatch.id.in_(dispatch_ids))))
        # The expert's copy of a batch names no single question: it is found by its dispatch.
        mails = list(
            await tx.scalars(
                select(OutboxMail)
                .where(
                    or_(
                        OutboxMail.question_id == question_id,
                        OutboxMail.dispatch_id.in_(dispatch_ids),
                    )
                )
                .order_by(OutboxMail.id)
            )
        )
    return QuestionDetail(question, thread, in_thread, answers, dispatches, mails)


async def _question(tx: AsyncSession, question_id: int) -> Question:
    question = await tx.get(Question, question_id)
    if question is None:
        raise NotFound(f"no question Q-{question_id}")
    return question


@dataclass(frozen=True)
class Moved:
    refs: list[str]  # the questions of the thread, all moved together
    session_no: int
    country: str | None
    # Where the questions had already gone to an expert (they are not sent again).
    with_experts: list[str]


async def move_question(
    engine: AsyncEngine,
    config: Config,
    question_id: int,
    *,
    session: int | None,
    country: str | None,
) -> Moved:
    """Put a question, with the rest of its thread, into another session and/or country."""
    if session is not None and not any(s.number == session for s in config.sessions):
        known = ", ".join(str(s.number) for s in config.sessions)
        raise NotFound(f"no session {session} (sessions: {known})")
    code = _country_code(config, country)
    async with session_factory(engine).begin() as tx:
        question = await _question(tx, question_id)
        thread = await tx.get_one(Thread, question.thread_id, with_for_update=True)
        if session is not None:
            thread.session_no, thread.session_source = session, BY_ORGANISER
            await tx.execute(
                update(Question)
                .where(Question.thread_id == thread.id)
                .values(session_no=session)
                .execution_options(synchronize_session=False)
            )
        if country is not None:
            thread.country, thread.country_source = code, BY_ORGANISER
        refs = [
            f"Q-{i}"
            for i in await tx.scalars(
                select(Question.id).where(Question.thread_id == thread.id).order_by(Question.id)
            )
        ]
        experts = list(
            await tx.scalars(
                select(Dispatch.experts)
                .join(dispatch_questions, dispatch_questions.c.dispatch_id == Dispatch.id)
                .join(Question, Question.id == dispatch_questions.c.question_id)
                .where(Question.thread_id == thread.id)
                .distinct()
            )
        )
        return Moved(refs, thread.session_no, thread.country, experts)


def _country_code(config: Config, country: str | None) -> str | None:
    if country is None or country.lower() in UNASSIGNED_NAMES:
        return None
    codes = {c.code for c in config.countries}
    if country.upper() not in codes:
        raise NotFound(f"no country {country} (countries: {', '.join(sorted(codes))}, unassigned)")
    return country.upper()


async def close_question(engine: AsyncEngine, question_id: int, reason: str) -> Question:
    """Close a question that needs no answer, and those merged into it; nothing is sent.

    The state changes only from new or with the expert, in one UPDATE, so an answer
    published at the same moment wins and the close is refused.
    """
    async with session_factory(engine).begin() as tx:
        question = await _question(tx, question_id)
        closed = await tx.execute(
            update(Question)
            .where(
                Question.id == question_id,
                Question.state.in_(OPEN_QUESTION_STATES),
            )
            .values(state=QuestionState.CLOSED, closed_reason=reason)
            .execution_options(synchronize_session=False)
        )
        if closed.rowcount == 0:  # type: ignore[attr-defined]
            await tx.refresh(question)
            raise NotFound(f"{question.ref} is already {question.state}")
        # Questions merged into it were waiting for its answer: none is coming.
        await tx.execute(
            update(Question)
            .where(Question.merged_into == question_id, Question.state == QuestionState.MERGED)
            .values(state=QuestionState.CLOSED, closed_reason=reason)
            .execution_options(synchronize_session=False)
        )
        await tx.refresh(question)
        return question


@dataclass(frozen=True)
class Sorted:
    email: str
    country: str
    refs: list[str]


async def apply_roster(
    engine: AsyncEngine, config: Config, roster: Roster | None = None
) -> list[Sorted]:
    """Give the roster's country to every unassigned participant on it (read afresh if None).

    A thread that already has a country keeps it (an organiser may have moved it); the
    participant's name and language come from the roster where it has them. Applying the
    same roster twice changes nothing, so several processes may do it at once.
    """
    from qa_mailer.classify.roster import load_roster

    roster = roster if roster is not None else load_roster(config.roster, config.countries)
    found: list[Sorted] = []
    async with session_factory(engine).begin() as tx:
        threads = list(
            await tx.scalars(select(Thread).where(Thread.country.is_(None)).order_by(Thread.id))
        )
        for thread in threads:
            participant = roster.get(thread.participant_email)
            if participant is None:
                continue
            thread.country, thread.country_source = participant.country, "roster"
            thread.participant_name = participant.name or thread.participant_name
            thread.language = participant.language or thread.language
            refs = [
                f"Q-{i}"
                for i in await tx.scalars(
                    select(Question.id).where(Question.thread_id == thread.id).order_by(Question.id)
                )
            ]
            found.append(Sorted(thread.participant_email, participant.country, refs))
        await tx.flush()
    return found


# A question may be merged while nobody has answered or closed it.
MERGEABLE = (QuestionState.NEW, QuestionState.WITH_EXPERT)


async def merge_questions(
    engine: AsyncEngine, config: Config, question_id: int, *, into: int
) -> Question:
    """Merge a question into another: the other's answer reaches this one's participant.

    Nothing is sent now unless ``into`` is already answered: then its published answers
    go to this question's participant at once (in their own thread), and the mail is seen
    on its way as other commands do (see admin.hand_over).
    """
    from qa_mailer.admin import hand_over
    from qa_mailer.answer.merged import publish_to_merged
    from qa_mailer.templates import Templates

    clock = SystemClock()
    async with session_factory(engine).begin() as tx:
        question = await _question(tx, question_id)
        if question_id == into:
            raise NotFound(f"{question.ref} cannot be merged into itself")
        main = await _question(tx, into)
        if main.merged_into is not None:
            raise NotFound(
                f"{main.ref} is merged into Q-{main.merged_into}: merge into Q-{main.merged_into}"
            )
        # The state changes in one UPDATE from a mergeable state, so an answer published or
        # another organiser's merge at the same moment wins and this one is refused.
        merged = await tx.execute(
            update(Question)
            .where(Question.id == question_id, Question.state.in_(MERGEABLE))
            .values(state=QuestionState.MERGED, merged_into=main.id)
            .execution_options(synchronize_session=False)
        )
        if merged.rowcount == 0:  # type: ignore[attr-defined]
            await tx.refresh(question)
            raise NotFound(f"{question.ref} is already {question.state}")
        # Questions merged into this one follow it to the question it joins.
        await tx.execute(
            update(Question)
            .where(Question.merged_into == question_id)
            .values(merged_into=main.id)
            .execution_options(synchronize_session=False)
        )
        await tx.refresh(question)
        queued: list[OutboxMail] = []
        if main.state == QuestionState.ANSWERED:
            thread = await tx.get_one(Thread, main.thread_id)
            answers = list(
                await tx.scalars(
                    select(Answer)
                    .where(Answer.question_id == main.id, Answer.state == AnswerState.PUBLISHED)
                    .order_by(Answer.id)
                )
            )
            queued = await publish_to_merged(
                tx,
                config,
                Templates.of(config),
                clock,
                main,
                thread.participant_email,
                answers,
                only=question,
            )
            await tx.refresh(question)
    if queued:
        await hand_over(engine, config, [row.id for row in queued])
    return question
