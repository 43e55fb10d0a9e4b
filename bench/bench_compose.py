"""How fast outgoing mail is built and serialised: compose.py + outbox serialising against wire.py.

For each kind of text (ASCII, Latin-2 Croatian, Turkish, Cyrillic) the same acknowledgement and
expert's copy (rendered from our templates around a 1-3 KB question) are built both ways in the
same run. The figures are the average size of a mail in bytes and microseconds per mail, the
best of many short rounds (the least disturbed by other work on a shared machine).

Usage: python bench/bench_compose.py [ROUNDS]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.policy import compat32
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa_mailer.route.mails import AUTOMATIC_HEADERS, QuestionView
from qa_mailer.send import compose
from qa_mailer.templates import Templates
from tests import stdlib_mail

# Short rounds of a few mails: the best of many is the least disturbed by other work.
ROUND = 5
# The outbox's way of serialising a compose.py message.
WIRE_POLICY = compat32.clone(linesep="\r\n")
DATE = datetime(2026, 12, 3, 12, 30, tzinfo=UTC)

# A question of 1-3 KB in each script: three paragraphs, each one long line, as mail
# clients send them.
QUESTIONS = {
    "ascii": (
        "Ana",
        "How does the cluster help small furniture makers export?",
        "How does the cluster help small furniture makers with exports, and who pays for it? ",
    ),
    "croatian": (
        "Ana Horvat",
        "Kako klaster pomaže malim proizvođačima namještaja u izvozu?",
        "Kako klaster pomaže malim proizvođačima namještaja u izvozu? Tko plaća članarinu, "
        "općina ili poduzetnici? Žurno, đače! ",
    ),
    "turkish": (
        "Ayşe Yılmaz",
        "Kümelenme ihracatta küçük mobilya üreticilerine nasıl yardım eder?",
        "Şirketimiz İstanbul'da; kümelenme ihracatta küçük üreticilere nasıl yardım eder, "
        "aidatı kim öder? ",
    ),
    "cyrillic": (
        "Иван Петров",
        "Как кластер помогает малым производителям мебели в экспорте?",
        "Как кластер помогает малым производителям мебели в экспорте? Кто платит взносы, "
        "муниципалитет или предприниматели? ",
    ),
}

# The language each question's participant is written to in.
LANGUAGES = {"ascii": "en", "croatian": "hr", "turkish": "tr", "cyrillic": "ru"}

Builder = Callable[..., bytes]


def old_way(**kwargs: Any) -> bytes:
    return stdlib_mail.build_mail(**kwargs).as_bytes(policy=stdlib_mail.WIRE)


def new_way(**kwargs: Any) -> bytes:
    return compose.build_mail(**kwargs).raw


def mails(script: str) -> list[dict[str, Any]]:
    """The acknowledgement and the expert's copy one question causes, from our templates."""
    name, subject, sentence = QUESTIONS[script]
    body = "\n\n".join(sentence * 5 for _ in range(3))
    templates = Templates()
    session = SimpleNamespace(code="VC3", title="Wood and furniture clusters")
    question = QuestionView(
        "Q-17", name, "ana@drvo.example.hr", "Croatia", subject, body, None, DATE, LANGUAGES[script]
    )
    ack = {
        "sender": ("Q&A Service", "qa@clusters.example.org"),
        "to": ["ana@drvo.example.hr"],
        "subject": f"Re: {subject} [Q-17]",
        "text": templates.render(
            "ack.txt",
            participant_name=name,
            service_name="Q&A Service",
            ref="Q-17",
            session=session,
            subject=subject,
        ),
        "message_id": "<qa.ack.0123abcd0123abcd@clusters.example.org>",
        "date": DATE,
        "in_reply_to": "<CAF=abc123@mail.example.hr>",
        "references": ["<CAF=abc123@mail.example.hr>"],
        "headers": {
            **AUTOMATIC_HEADERS,
            "X-Loop": "qa@clusters.example.org",
            "X-QA-Question": "Q-17",
        },
    }
    expert = {
        "sender": ("Q&A Service VC3", "qa@clusters.example.org"),
        "to": ["expert@clusters.example.org"],
        "subject": f"[Q-17] [VC3] {subject}",
        "text": templates.render(
            "to_expert.txt", session=session, question=question, questions=[question]
        ),
        "message_id": "<qa.route.0123abcd0123abcd@clusters.example.org>",
        "date": DATE,
        "reply_to": "qa+r0123abcd@clusters.example.org",
        "headers": {"X-Loop": "qa@clusters.example.org", "X-QA-Question": "Q-17"},
    }
    return [ack, expert]


def per_mail_us(build: Builder, cases: list[dict[str, object]], repeat: int) -> float:
    """Microseconds per mail for one short round, the best of ``repeat`` rounds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(ROUND):
            for case in cases:
                build(**case)
        best = min(best, time.perf_counter() - start)
    return best / (ROUND * len(cases)) * 1e6


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    print(f"{'text':<10} {'old B':>6} {'new B':>6} {'old µs':>8} {'new µs':>8} {'speed-up':>9}")
    for script in QUESTIONS:
        cases = mails(script)
        old_size = sum(len(old_way(**case)) for case in cases) // len(cases)
        new_size = sum(len(new_way(**case)) for case in cases) // len(cases)
        # Old and new take turns, so a busy moment on the machine falls on both.
        old = new = float("inf")
        for _ in range(rounds // 10):
            old = min(old, per_mail_us(old_way, cases, 10))
            new = min(new, per_mail_us(new_way, cases, 10))
        print(
            f"{script:<10} {old_size:>6} {new_size:>6} {old:>8.1f} {new:>8.1f} {old / new:>8.1f}x"
        )


if __name__ == "__main__":
    main()
