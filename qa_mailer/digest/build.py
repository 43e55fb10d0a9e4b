"""The organisers' digest of a session: questions by country, answered and pending, waits."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from qa_mailer.classify.roster import Roster
from qa_mailer.config import Config, SessionConfig
from qa_mailer.db import Answer, AnswerState, Bounce, Question, QuestionState, Thread
from qa_mailer.send.compose import Attachment
from qa_mailer.states import OPEN_QUESTION_STATES

STATE_LABELS = {
    QuestionState.NEW: "new (not yet delivered to the expert)",
    QuestionState.WITH_EXPERT: "with the expert",
    QuestionState.ANSWERED: "answered",
    QuestionState.CLOSED: "closed by an organiser",
    QuestionState.MERGED: "waiting for the answer to the question it was merged into",
}


@dataclass(frozen=True)
class DigestQuestion:
    ref: str
    state: str
    state_label: str
    participant: str
    email: str
    organisation: str
    subject: str
    text: str
    answers: tuple[str, ...]
    held_answers: int
    asked_at: str
    waited_seconds: float
    follow_up_to: str | None
    # When it was last asked, answered or had a reply held, and whether that was after the
    # digest before this one (always true in a session's first digest).
    changed_at: datetime
    asked: datetime
    changed: bool = True
    # Our mails about this question that bounced: "ana@drvo.example.hr (answer, permanent)".
    bounced: tuple[str, ...] = ()
    # An open question this one resembles, while an organiser has not merged or closed it.
    similar_to: str | None = None

    @property
    def answered(self) -> bool:
        return self.state == QuestionState.ANSWERED

    @property
    def excerpt(self) -> str:
        """The question's first lines, as the digest's body shows it."""
        return excerpt(self.text)

    @property
    def answer_excerpts(self) -> tuple[str, ...]:
        return tuple(excerpt(a) for a in self.answers)

    @property
    def pending(self) -> bool:
        """Still waiting for an answer: neither answered nor closed by an organiser."""
        return self.state not in (QuestionState.ANSWERED, QuestionState.CLOSED)


@dataclass(frozen=True)
class QuestionList:
    """The list as a file: how it is attached, and how many questions it holds."""

    attachment: Attachment
    questions: int
    zipped: bool

    @property
    def filename(self) -> str:
        return self.attachment.filename

    @property
    def size(self) -> int:
        return len(self.attachment.data)


@dataclass(frozen=True)
class CountryDigest:
    code: str
    name: str
    questions: tuple[DigestQuestion, ...]

    @property
    def asked(self) -> int:
        return len(self.questions)

    @property
    def answered(self) -> int:
        return sum(q.answered for q in self.questions)

    @property
    def pending(self) -> int:
        return sum(q.pending for q in self.questions)

    @property
    def median_wait_answered(self) -> float | None:
        waits = [q.waited_seconds for q in self.questions if q.answered]
        return statistics.median(waits) if waits else None

    @property
    def longest_pending(self) -> float | None:
        waits = [q.waited_seconds for q in self.questions if q.pending]
        return max(waits) if waits else None


# The figures are worked out once per digest (cached_property): the templates ask for them
# again and again, and a session may have thousands of questions.
@dataclass(frozen=True)
class Digest:
    session: SessionConfig
    generated_at: str
    timezone: str
    countries: tuple[CountryDigest, ...]
    # When the digest before this one was made (in the organisers' time zone), if any.
    since: str | None = None
    # The session's closing digest: all its questions answered, or its closing delay passed.
    closing: bool = False
    # Each list of questions in the body shows at most this many ([digest] list_questions).
    limit: int = 20
    # When the digest before this one was made, if any.
    since_at: datetime | None = None
    # The whole mail, attached list included, stays within this ([digest] size_budget_kb).
    budget_kb: int = 300
    # The list of every question attached to the mail, if it is; or the list that was left
    # out because it would not fit the budget.
    question_list: QuestionList | None = None
    list_left_out: QuestionList | None = None

    @cached_property
    def complete(self) -> bool:
        """Whether the body lists every question (else the attached list holds them all).

        A digest that is not complete lists the waiting questions and those answered since
        the digest before, up to ``limit`` each, and only counts those answered before it.
        """
        return all(
            len(part) <= self.limit
            for part in (self.waiting, self.answered_since, self.answered_before)
        )

    @cached_property
    def questions(self) -> tuple[DigestQuestion, ...]:
        return tuple(q for c in self.countries for q in c.questions)

    @cached_property
    def waiting(self) -> tuple[DigestQuestion, ...]:
        """The questions still without an answer, the longest-waiting first."""
        pending = [q for q in self.questions if not q.answered]
        return tuple(sorted(pending, key=lambda q: -q.waited_seconds))

    @cached_property
    def answered_since(self) -> tuple[DigestQuestion, ...]:
        """Questions answered since the digest before this one, in the order they were asked."""
        return tuple(q for q in self.questions if q.answered and q.changed)

    @cached_property
    def answered_before(self) -> tuple[DigestQuestion, ...]:
        """The rest: questions answered by the time of the digest before this one."""
        return tuple(q for q in self.questions if q.answered and not q.changed)

    @cached_property
    def asked_since(self) -> int:
        """How many questions were asked after the digest before this one (all in the first)."""
        return sum(1 for q in self.questions if self.since_at is None or q.asked > self.since_at)

    @cached_property
    def changed(self) -> int:
        """How many questions were asked, answered or had news after the digest before this one."""
        return sum(1 for q in self.questions if q.changed)

    def news_between(self, since: datetime | None, until: datetime) -> int:
        """How many questions were asked, answered or had a reply held in (since, until]."""
        return sum(
            1
            for q in self.questions
            if q.changed_at <= until and (since is None or q.changed_at > since)
        )

    @cached_property
    def asked(self) -> int:
        return sum(c.asked for c in self.countries)

    @cached_property
    def answered(self) -> int:
        return sum(c.answered for c in self.countries)

    @cached_property
    def pending(self) -> int:
        return sum(c.pending for c in self.countries)

    @cached_property
    def held(self) -> int:
        return sum(q.held_answers for c in self.countries for q in c.questions)

    @cached_property
    def bounced(self) -> int:
        """Questions with a mail to the participant that bounced."""
        return sum(1 for q in self.questions if q.bounced)

    @cached_property
    def median_wait_answered(self) -> float | None:
        waits = [q.waited_seconds for c in self.countries for q in c.questions if q.answered]
        return statistics.median(waits) if waits else None


UNASSIGNED = "--"
# What the body of a digest shows of a question or an answer: its first lines, cut at a word
# near EXCERPT_CHARS. The whole texts are in `qa-mailer export`.
EXCERPT_LINES = 3
EXCERPT_CHARS = 240


def excerpt(text: str) -> str:
    """The first EXCERPT_LINES lines of ``text`` (at most EXCERPT_CHARS), "[...]" where cut."""
    lines = text.strip("\n").split("\n")
    kept = "\n".join(lines[:EXCERPT_LINES]).rstrip()
    cut = len(lines) > EXCERPT_LINES
    if len(kept) > EXCERPT_CHARS:
        kept = kept[:EXCERPT_CHARS]
        space = kept.rfind(" ")
        kept = (kept[:space] if space > EXCERPT_CHARS // 2 else kept).rstrip()
        cut = True
    return kept + " [...]" if cut else kept


async def build_digest(
    session: AsyncSession,
    config: Config,
    roster: Roster,
    number: int,
    now: datetime,
    since: datetime | None = None,
) -> Digest:
    """Gather every question of session ``number``, grouped by country in the configured order.

    ``since`` is when the digest before this one was made: what changed after it is marked.
    """
    questions = list(
        await session.scalars(
            select(Question)
            .join(Thread)
            .where(Thread.session_no == number)
            .options(selectinload(Question.thread))
            .order_by(Question.id)
        )
    )
    answers = await _answers(session, [q.id for q in questions])
    bounces = await _bounces(session, [q.id for q in questions])
    zone = config.digest.timezone
    grouped: dict[str, list[DigestQuestion]] = {c.code: [] for c in config.countries}
    grouped[UNASSIGNED] = []
    for question in questions:
        thread = question.thread
        mine = answers.get(question.id, [])
        published = [a.body for a in mine if a.state == AnswerState.PUBLISHED]
        held = sum(1 for a in mine if a.state == AnswerState.HELD)
        bounced = bounces.get(question.id, [])
        changed_at = max(
            [question.asked_at]
            + [a.published_at for a in mine if a.published_at is not None]
            + [a.created_at for a in mine if a.state == AnswerState.HELD]
            + [b.created_at for b in bounced]
        )
        end = question.answered_at if question.answered_at else now
        participant = roster.get(thread.participant_email)
        grouped.setdefault(thread.country or UNASSIGNED, []).append(
            DigestQuestion(
                ref=question.ref,
                state=question.state,
                state_label=STATE_LABELS.get(QuestionState(question.state), question.state)
                + (f": {question.closed_reason}" if question.closed_reason else "")
                + (f" (merged into Q-{question.merged_into})" if question.merged_into else "")
                + (" (an answer is held for an organiser)" if held else ""),
                participant=thread.participant_name,
                email=thread.participant_email,
                organisation=participant.organisation if participant else "",
                subject=question.subject,
                text=question.body,
                answers=tuple(published),
                held_answers=held,
                asked_at=question.asked_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                waited_seconds=max(0.0, (end - question.asked_at).total_seconds()),
                follow_up_to=f"Q-{question.follow_up_to}" if question.follow_up_to else None,
                changed_at=changed_at,
                asked=question.asked_at,
                bounced=tuple(
                    f"{b.address} ({b.kind or 'mail'}, "
                    f"{'permanent' if b.permanent else 'temporary'})"
                    for b in bounced
                ),
                changed=since is None or changed_at > since,
                similar_to=f"Q-{question.similar_to}"
                if question.similar_to and question.state in OPEN_QUESTION_STATES
                else None,
            )
        )
    names = {c.code: c.name for c in config.countries} | {UNASSIGNED: "Country not assigned"}
    countries = tuple(
        CountryDigest(code, names.get(code, code), tuple(items))
        for code, items in grouped.items()
        if items or code != UNASSIGNED
    )
    return Digest(
        session=config.session(number),
        generated_at=now.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        timezone=str(zone.key),
        countries=countries,
        since=since.astimezone(zone).strftime("%Y-%m-%d %H:%M") if since else None,
        limit=config.digest.list_questions,
        since_at=since,
        budget_kb=config.digest.size_budget_kb,
    )


async def _bounces(session: AsyncSession, question_ids: list[int]) -> dict[int, list[Bounce]]:
    found: dict[int, list[Bounce]] = {}
    if not question_ids:
        return found
    rows = await session.scalars(
        select(Bounce).where(Bounce.question_id.in_(question_ids)).order_by(Bounce.id)
    )
    for bounce in rows:
        if bounce.question_id is not None:
            found.setdefault(bounce.question_id, []).append(bounce)
    return found


async def _answers(session: AsyncSession, question_ids: list[int]) -> dict[int, list[Answer]]:
    found: dict[int, list[Answer]] = {}
    if not question_ids:
        return found
    rows = await session.scalars(
        select(Answer).where(Answer.question_id.in_(question_ids)).order_by(Answer.id)
    )
    for answer in rows:
        found.setdefault(answer.question_id, []).append(answer)
    return found
