"""Follow-ups join their question's thread: by Message-ID references, a [Q-n] tag, or subject."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from qa_mailer.db import InboundMessage, NewQuestion, NewThread, OutboxMail, Question, Thread

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
    return strip_subject(subject).casefold()


def reply_subject(subject: str, ref: str) -> str:
    """The subject of our reply to a participant's mail: "Re: <theirs> [Q-n]", once each.

    Their reply prefixes go (no "Re: Re:"), their tags stay ("[VC2]" tells the session), and
    the reference is added unless it is there already.
    """
    text = _PREFIX.sub("", subject).strip()
    tag = f"[{ref}]"
    text = " ".join(text.replace(tag, " ").split())
    return f"Re: {text} {tag}" if text else f"Re: {tag}"


def strip_subject(subject: str) -> str:
    """The subject without reply prefixes and our tags ([Q-n], [VCn], [XX]), spaces single."""
    if len(subject) <= _REMEMBERED_SUBJECT:
        return _stripped(subject)
    return _strip(subject)


# A question's subject is stripped several times on its way (its thread's key, its
# acknowledgement, the expert's copy); the regular expressions run once for each subject.
# Only subjects of a usual length are kept: a sender's subject can be megabytes long.
_REMEMBERED_SUBJECT = 1000


@functools.lru_cache(maxsize=1024)
def _stripped(subject: str) -> str:
    return _strip(subject)


def _strip(subject: str) -> str:
    previous = None
    text = subject
    while previous != text:
        previous = text
        text = _TAGS.sub("", _PREFIX.sub("", text)).strip()
    return " ".join(text.split())


def references_in(subject: str) -> list[int]:
    """Question numbers mentioned as Q-17 in a subject."""
    return [int(m.group(1)) for m in _REFERENCE.finditer(subject)]


async def _questions_by_mail(
    session: AsyncSession,
    ids: list[str],
    mail: type[InboundMessage] | type[OutboxMail],
    joined: ColumnElement[bool],
) -> dict[str, _Pair]:
    """Message-ID -> the newest question with a mail of that Message-ID in ``mail``'s table."""
    rows = await session.execute(
        select(Question, Thread, mail.rfc_message_id)
        .join(Thread, Question.thread_id == Thread.id)
        .join(mail, joined)
        .where(mail.rfc_message_id.in_(ids))
        .order_by(Question.id)
    )
    return {rfc_id: (question, thread) for question, thread, rfc_id in rows if rfc_id}


# A question and its thread, stored or of the batch.
_Pair = tuple[Question | NewQuestion, Thread | NewThread]
# The newest question of a thread: a stored one's id, or a question of the batch.
_Latest = Question | NewQuestion | int | None


@dataclass(frozen=True)
class ThreadMatch:
    """The thread a mail belongs to, and the question it answers to, when known."""

    thread: Thread | NewThread  # a NewThread: started by a mail earlier in the same batch
    question: Question | NewQuestion | None
    how: str


@dataclass(frozen=True)
class Lookup:
    """What a mail offers to find its thread by."""

    sender: str
    message_ids: tuple[str, ...]  # In-Reply-To and References
    subject: str


class ThreadIndex:
    """The threads a batch of mails may follow up, loaded in a few queries for the whole batch.

    A mail follows up a thread by its references (to the participant's own earlier mail, or to
    our acknowledgement or answer), else by a [Q-n] in the subject, else by the same subject
    without reply prefixes. A match by reference may belong to another participant (someone
    replying to a forwarded answer); the caller decides what that means. Matches by tag or
    subject are only accepted from the thread's own participant. Questions of the batch itself
    are added as the batch goes, so a mail can follow up one that came just before it.
    """

    def __init__(self) -> None:
        self._by_mail: dict[str, _Pair] = {}  # participant's mail -> question
        self._by_our_mail: dict[str, _Pair] = {}  # our mail -> question
        self._by_number: dict[int, _Pair] = {}
        # (participant, subject key) -> thread and its newest question id (None: not yet known)
        self._by_subject: dict[tuple[str, str], tuple[Thread | NewThread, _Latest]] = {}
        # Questions of the batch have no id yet; they are newer than any stored one, and
        # newer the later they came.
        self._added: dict[int, int] = {}

    @classmethod
    async def load(
        cls, session: AsyncSession, lookups: Sequence[Lookup], now: datetime
    ) -> ThreadIndex:
        """Everything ``lookups`` may match, in at most four queries."""
        index = cls()
        ids = sorted({i for lookup in lookups for i in lookup.message_ids})
        if ids:
            index._by_mail = await _questions_by_mail(
                session, ids, InboundMessage, Question.message_id == InboundMessage.id
            )
            index._by_our_mail = await _questions_by_mail(
                session, ids, OutboxMail, OutboxMail.question_id == Question.id
            )
        numbers = sorted({n for lookup in lookups for n in references_in(lookup.subject)})
        if numbers:
            referred = await session.execute(
                select(Question, Thread)
                .join(Thread, Question.thread_id == Thread.id)
                .where(Question.id.in_(numbers))
            )
            index._by_number.update((q.id, (q, t)) for q, t in referred)
        keys = {(lookup.sender, subject_key(lookup.subject)) for lookup in lookups}
        keys = {(sender, key) for sender, key in keys if key}
        if keys:
            newest = (
                select(func.max(Question.id))
                .where(Question.thread_id == Thread.id)
                .scalar_subquery()
            )
            threads = await session.execute(
                select(Thread, newest)
                .where(
                    Thread.participant_email.in_({sender for sender, _ in keys}),
                    Thread.subject_key.in_({key for _, key in keys}),
                    Thread.created_at >= now - FOLLOW_UP_WINDOW,
                )
                .order_by(Thread.id)
            )
            for thread, question_id in threads:
                index._by_subject[(thread.participant_email, thread.subject_key)] = (
                    thread,
                    question_id,
                )
        return index

    def find(self, lookup: Lookup) -> ThreadMatch | None:
        """The thread ``lookup`` follows up, by references, by [Q-n], then by subject."""
        for table in (self._by_mail, self._by_our_mail):
            found = [table[i] for i in lookup.message_ids if i in table]
            if found:
                question, thread = self._newest(found)
                return ThreadMatch(thread, question, "references")
        mine = [
            self._by_number[n]
            for n in references_in(lookup.subject)
            if n in self._by_number and self._by_number[n][1].participant_email == lookup.sender
        ]
        if mine:
            question, thread = self._newest(mine)
            return ThreadMatch(thread, question, "subject-reference")
        key = subject_key(lookup.subject)
        if key and (lookup.sender, key) in self._by_subject:
            thread, _ = self._by_subject[(lookup.sender, key)]
            return ThreadMatch(thread, None, "subject")
        return None

    def latest_question(self, thread: Thread | NewThread) -> _Latest:
        """The newest question of a thread found by subject: an id, or a question of the batch."""
        return self._by_subject.get((thread.participant_email, thread.subject_key), (thread, None))[
            1
        ]

    def add(
        self, question: NewQuestion, thread: Thread | NewThread, rfc_message_id: str | None
    ) -> None:
        """Record a question of the batch, so later mails of the batch can follow it up."""
        self._added[id(question)] = len(self._added)
        if rfc_message_id:
            self._by_mail[rfc_message_id] = (question, thread)
        if thread.subject_key:
            self._by_subject[(thread.participant_email, thread.subject_key)] = (thread, question)

    def _newest(self, found: list[_Pair]) -> _Pair:
        def age(pair: _Pair) -> int:
            question = pair[0]
            if question.id is not None:
                return int(question.id)
            return (1 << 62) + self._added[id(question)]

        return max(found, key=age)
