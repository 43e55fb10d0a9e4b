"""A session with thousands of questions, written straight into the database (tests and bench).

Going through SMTP one mail at a time would take minutes for 2,000 questions; what is tested
here is what the digest makes of them, so the rows are inserted in a few statements, as the
pipeline would have left them: a message, a thread and a question each, and for the answered
ones the expert's message and a published answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from qa_mailer.db import (
    Answer,
    AnswerState,
    InboundMessage,
    MessageState,
    Question,
    RawMessage,
    Thread,
)
from qa_mailer.db.engine import session_factory

# Countries of the test configuration, with a domain each; one participant in twelve has an
# address no rule places (a webmail address), as in a real programme.
DOMAINS = {
    "BG": "example.bg",
    "HR": "example.hr",
    "RS": "example.rs",
    "TR": "example.com.tr",
    "RU": "example.ru",
    None: "gmail.example.com",
}
# Syllables the words of a question are made of, Latin or Cyrillic (one question in four, as
# from the Russian, Bulgarian and Serbian participants): text that compresses about as well
# as real prose, and a digest that mixes the two scripts as a real one does.
LATIN = [
    "ka",
    "ri",
    "mo",
    "ne",
    "ta",
    "lu",
    "si",
    "po",
    "de",
    "va",
    "ro",
    "mi",
    "za",
    "ku",
    "le",
    "an",
    "ex",
    "pro",
    "tra",
    "gra",
    "ble",
    "ment",
    "tion",
    "cul",
]
CYRILLIC = [
    "ка",
    "ри",
    "мо",
    "не",
    "та",
    "лу",
    "си",
    "по",
    "де",
    "ва",
    "ро",
    "ми",
    "за",
    "ку",
    "ле",
    "ан",
    "ож",
    "ис",
    "ко",
    "ли",
    "ра",
    "ст",
    "пр",
    "ду",
    "ция",
]


@dataclass(frozen=True)
class FilledQuestion:
    ref: str
    asked_at: datetime
    answered_at: datetime | None
    subject: str
    body: str


def _words(rng: random.Random, count: int, syllables: list[str]) -> str:
    words = ("".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(count))
    return " ".join(words)


def _text(rng: random.Random, low: int, high: int, syllables: list[str]) -> str:
    """Paragraphs of made-up sentences, between ``low`` and ``high`` characters long."""
    target = rng.randint(low, high)
    lines: list[str] = []
    while sum(map(len, lines)) < target:
        sentence = _words(rng, rng.randint(6, 16), syllables).capitalize()
        lines.append(sentence + rng.choice((".", "?", ".", "!")))
    return "\n".join(lines)


async def fill_session(
    engine: AsyncEngine,
    session_no: int,
    count: int,
    now: datetime,
    *,
    answered_share: float = 0.6,
    seed: int = 13,
) -> list[FilledQuestion]:
    """``count`` questions of session ``session_no``, asked over the ten days before ``now``."""
    rng = random.Random(seed)
    async with session_factory(engine).begin() as tx:
        start = (await tx.scalar(select(func.max(InboundMessage.id)))) or 0
        first_thread = (await tx.scalar(select(func.max(Thread.id)))) or 0
        first_question = (await tx.scalar(select(func.max(Question.id)))) or 0
        first_answer = (await tx.scalar(select(func.max(Answer.id)))) or 0
        messages, threads, questions, answers = [], [], [], []
        filled = []
        # Each question asked at a second of its own: no two wait the same, so the order of
        # the longest-waiting is one a test can work out.
        ages = rng.sample(range(600, 10 * 86400), count)
        for n in range(1, count + 1):
            country = rng.choice(list(DOMAINS))
            person = rng.randint(1, 300)
            address = f"p{person}@firm{person % 40}.{DOMAINS[country]}"
            asked = now - timedelta(seconds=ages[n - 1])
            answered = None
            if rng.random() < answered_share:
                answered = min(now, asked + timedelta(seconds=rng.randint(300, 3 * 86400)))
            syllables = CYRILLIC if rng.random() < 0.25 else LATIN
            subject = _words(rng, rng.randint(3, 9), syllables).capitalize() + "?"
            body = _text(rng, 300, 1500, syllables)
            message_id, question_id = start + n, first_question + n
            messages.append(_message(message_id, address, subject, asked, "question"))
            threads.append(
                {
                    "id": first_thread + n,
                    "session_no": session_no,
                    "session_source": "subject-tag",
                    "country": country,
                    "country_source": "sender-domain" if country else None,
                    "participant_email": address,
                    "participant_name": f"Participant {person}",
                    "subject_key": subject.lower(),
                    "created_at": asked,
                }
            )
            questions.append(
                {
                    "id": question_id,
                    "thread_id": first_thread + n,
                    "message_id": message_id,
                    "session_no": session_no,
                    "subject": subject,
                    "body": body,
                    "state": "answered" if answered else "with_expert",
                    "asked_at": asked,
                    "answered_at": answered,
                    "acknowledged_at": asked,
                }
            )
            if answered is not None:
                reply_id = start + count + len(answers) + 1
                messages.append(
                    _message(reply_id, "expert@example.org", "Re: " + subject, answered, "reply")
                )
                answers.append(
                    {
                        "id": first_answer + len(answers) + 1,
                        "question_id": question_id,
                        "message_id": reply_id,
                        "expert_address": "expert@example.org",
                        "body": _text(rng, 200, 1200, syllables),
                        "state": AnswerState.PUBLISHED,
                        "created_at": answered,
                        "published_at": answered,
                    }
                )
            filled.append(FilledQuestion(f"Q-{question_id}", asked, answered, subject, body))
        await tx.execute(insert(InboundMessage.__table__), messages)
        # Their mail is not kept (as after retention): an empty raw row each.
        await tx.execute(
            insert(RawMessage.__table__), [{"message_id": m["id"], "raw": b""} for m in messages]
        )
        await tx.execute(insert(Thread.__table__), threads)
        await tx.execute(insert(Question.__table__), questions)
        if answers:
            await tx.execute(insert(Answer.__table__), answers)
        if engine.dialect.name == "postgresql":
            # The ids were given: move each sequence past them, for the rows the pipeline adds.
            for table in ("messages", "threads", "questions", "answers"):
                await tx.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    return filled


def _message(number: int, sender: str, subject: str, at: datetime, kind: str) -> dict[str, object]:
    return {
        "id": number,
        "received_at": at,
        "source": "smtp",
        "rfc_message_id": f"<bulk{number}@example.org>",
        "fingerprint": f"bulk{number}",
        "size": 0,
        "state": MessageState.PROCESSED,
        "kind": kind,
        "sender": sender,
        "subject": subject,
        "attempts": 1,
    }
