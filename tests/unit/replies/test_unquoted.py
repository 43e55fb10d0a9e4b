"""The screens (screens.py) and the short way for bodies that quote nothing (unquoted.py).

Each test compares the short way with the long one (``parse._parse_lines``), classify() with
and without the screens, or a screen with the rules it stands in for, on lines chosen to trip
them: headers, signatures and taglines in many spellings, with links, capitals, odd white
space and characters that fold oddly.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from qa_mailer.replies import QuestionRef
from qa_mailer.replies import classify as classify_module
from qa_mailer.replies.classify import classify
from qa_mailer.replies.files import load_reply_file
from qa_mailer.replies.headers import may_start_header
from qa_mailer.replies.html_quotes import html_to_marked_text
from qa_mailer.replies.lines import Kind, Line, normalise, split_lines
from qa_mailer.replies.parse import _parse_body, _parse_lines
from qa_mailer.replies.questions import Questions
from qa_mailer.replies.screens import ruled_lines
from qa_mailer.replies.signatures import (
    TAGLINE_STARTS,
    TAGLINE_WORDS,
    is_signature_delimiter,
    is_tagline,
    is_underscore_rule,
)
from qa_mailer.replies.unquoted import unquoted_reply
from qa_mailer.replies.vocab import fold

DATA = Path(__file__).resolve().parents[2] / "data" / "replies"
QUESTIONS = Questions(
    (
        QuestionRef("Q-17", "How can a small furniture maker join an existing cluster abroad?"),
        QuestionRef("Q-18", "Which public funds support cluster internationalisation?"),
    )
)

# Lines a rule may take for a header, signature or tagline, or that look like one.
TRICKY_LINES = (
    "-- ",
    "--",
    "-- \u2003",
    "---",
    "— —",
    "* * *",
    "-----Original Message-----",
    "-------- Пересылаемое сообщение --------",
    "---------- Forwarded message ---------",
    "---- John Smith wrote ----",
    "________________________________",
    "__",
    "  ____________",
    "\u2003__________",
    "=====",
    "~~~~ ~~~~",
    "Sent from my iPhone",
    "SENT FROM MY IPHONE",
    "  *Sent from my iPhone*",
    "<Sent from my iPhone>",
    "«Sent from my Galaxy»",
    "Sent <https://example.com/x> from my iPhone",
    "Sent from my iPhone <https://example.com/x>",
    "Se[nt](http://example.com) from my iPhone",
    "[Sent from my iPhone](https://example.com)",
    "Sent from Mail for Windows",
    "Отправлено с iPhone",
    "ОТПРАВЛЕНО С IPHONE",
    "Poslato sa mog iPhone-a",
    "Von meinem iPhone gesendet",
    "Diese Nachricht wurde von meinem Mobiltelefon gesendet.",
    "iPhone'umdan gönderildi",
    "İPHONE'UMDAN GÖNDERİLDİ",
    "Get Outlook for Android",
    "Get Outlook for iOS<https://aka.ms/o0ukef>",
    "From my iPhone 6",
    "from my phone, sorry for typos",
    "Sent from my wonderful old telephone that I carry everywhere I go " * 3,
    "On Mon, 1 Dec 2025 at 10:00, Ana <ana@drvo.example.hr> wrote:",
    "On 3 March 2025 Ana wrote:",
    "ON MON, 1 DEC 2025 AT 10:00, ANA WROTE:",
    "Le 3 mars 2025 à 10:15, Ana a écrit :",
    "Am 03.03.2025 um 10:15 schrieb QA Mailer:",
    "Thu, 26 Jun 2025 at 10:00, Ana <ana@drvo.example.hr> wrote:",
    "пн, 1 февр. 2021 г. в 10:00, Иван <ivan@zavod.example.ru>:",
    "20 окт. 2016 г., в 10:00, Иван написал(а):",
    "Ana <ana@drvo.example.hr> wrote:",
    "Ana <ana@drvo.example.hr> schrieb am Fr., 28.",
    "2016-03-03 17:21 GMT+01:00 Maria Rossi",
    "2011/4/7 Ana <ana@drvo.example.hr>",
    "Begin forwarded message:",
    "From: Ana Horvat",
    "Sent: Monday, 1 December 2025 10:00",
    "To: QA",
    "Subject: Pitanje",
    "*From:* Ana *Sent:* Monday *To:* QA *Subject:* x",
    "Od: Ana Horvat",
    "\u2003From: Ana",
    "** Sent: **: Monday",
    "Reply   To: qa@clusters.example.org",
    "  * From : Ana",
    "*** Subject: Pitanje",
    "*\u0307*From: Ana",
    "Time: 10:30, place: here",
    "От: Иван",
    "Gönderen: Ayşe",
    "Kimden: Ayşe Yılmaz",
    "\ue000",
    "20 zaposlenih",
    "Imamo 20 zaposlenih",
    "Mon 12 problems",
    "Mon  12 problems",
    "понедельник,\u2003 6 вопросов",
    "Subject：Pitanje",
    "\u2003-- ",
    "Q-17: yes",
    "1. First",
    "10:30 works for me",
    "ana@drvo.example.hr",
    "Mail: ana@drvo.example.hr",
    "Pitanje: tko upravlja klasterom?",
    "Pitanje：tko?",
    "see https://example.com/a",
    "İstanbul'da küçük bir şirket",
    "\u0307On 1 May 2020 Ana wrote:",
    "*\u0307*-- x",
    "*\u0307*Sent from my iPhone",
    " \u0307From: Ana",
    "\u0307\u0307-- ",
    "\u0307\u0307",
    "\u0307 *Subject: x",
    "20 окт. 2016 г., в 10 ч. Иван Петров",
    "написал:",
    "Кто принимает решения?",
    "на выставке 2025 года",
    "на 5 лет",
    "\u212aelvin 10:00",
    "ﬁrst thing",
    "straße 5",
    "\u1427",
    "a\xa0b",
    "x" * 999 + " On",
    " " * 990 + "From:",
    "On 1.2.2016 " + "wrote " * 160 + ":",
)

PROSE = (
    "Hello,",
    "",
    "How does a cluster help small furniture makers export?",
    "We have twenty employees and sell only at home.",
    "Kako klaster pomaže malim proizvođačima namještaja u izvozu?",
    "Какие университеты помогают кластеру?",
    "Best regards,",
    "Ana",
    "   ",
)


def _bodies() -> list[str]:
    rng = random.Random(17)
    bodies = []
    for line in TRICKY_LINES:
        bodies.extend(
            [
                f"Hello,\n\n{line}\n\nMore text.\nAna",
                f"{line}\nText after it",
                f"Question?\n{line}",
                f"Question?\n\n{line}\nSecond line\n\nThird paragraph",
                f"Answer\n\n{line}\nнаписал:\n> quoted\n> more",
                line,
            ]
        )
    pool = TRICKY_LINES + PROSE * 4
    for _ in range(600):
        bodies.append("\n".join(rng.choice(pool) for _ in range(rng.randint(2, 9))))
    return bodies


def _corpus_bodies() -> list[str]:
    bodies = []
    for path in sorted(DATA.rglob("*")):
        if path.suffix not in {".txt", ".html", ".eml"} or "expected" in path.parts:
            continue
        if "questions" in path.parts:
            continue
        text, html = load_reply_file(path)
        for body in (text, html_to_marked_text(html) if html else None):
            if body:
                bodies.append(body)
                # The same reply without its quoted lines: headers, signatures and history
                # without a quote are what the short way has to recognise.
                unquoted = "\n".join(
                    line for line in body.split("\n") if not line.lstrip().startswith(">")
                )
                bodies.extend([unquoted, "\n".join(unquoted.split("\n")[:8])])
    return bodies


@pytest.mark.parametrize("questions", [Questions(()), QUESTIONS], ids=["no questions", "questions"])
def test_the_short_way_gives_what_classifying_every_line_gives(questions: Questions) -> None:
    bodies = _bodies() + _corpus_bodies()
    short = 0
    for body in bodies:
        assert _parse_body(body, questions) == _parse_lines(normalise(body), questions), body
        short += unquoted_reply(normalise(body)) is not None
    # The comparison means something only if both ways were taken often.
    assert 0.2 < short / len(bodies) < 0.9


def _kinds(lines: list[Line]) -> list[tuple[str, int, str, Kind, bool]]:
    return [(line.raw, line.depth, line.body, line.kind, line.header) for line in lines]


def test_classify_with_the_screens_marks_what_it_marks_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bodies = [normalise(body) for body in _bodies() + _corpus_bodies()]
    screened = [_kinds(classify(split_lines(body))) for body in bodies]
    # Without the screens every line is handed to the rules.
    monkeypatch.setattr(classify_module, "_ruled", lambda lines: range(len(lines)))
    assert screened == [_kinds(classify(split_lines(body))) for body in bodies]


@pytest.mark.parametrize(
    ("body", "reply", "with_signature"),
    [
        (
            "Hello,\n\nMy question.  \n\n\n\nAna\n-- \nAna Horvat\n+385 1",
            "Hello,\n\nMy question.\n\nAna",
            "Hello,\n\nMy question.\n\nAna\n--\nAna Horvat\n+385 1",
        ),
        (
            "My question.\n\nSent from my iPhone\n\nMore?",
            "My question.",
            "My question.\n\nSent from my iPhone\n\nMore?",
        ),
        (
            "My question.\n\nOn 3 March 2025 Ana wrote:\nabout it",
            "My question.\n\nOn 3 March 2025 Ana wrote:\nabout it",
            "My question.\n\nOn 3 March 2025 Ana wrote:\nabout it",
        ),
    ],
)
def test_the_short_way_cuts_at_a_signature_or_tagline(
    body: str, reply: str, with_signature: str
) -> None:
    assert unquoted_reply(body) == (reply, with_signature)


@pytest.mark.parametrize(
    "body",
    [
        "> quoted",
        "Answer\n JS> quoted",
        "Answer\n\nOn Mon, 1 Dec 2025 at 10:00, Ana <ana@drvo.example.hr> wrote:\nold text",
        "Answer\n\nFrom: Ana\nSent: Monday\nTo: QA\nSubject: x\n\nold text",
        "Answer\n__________\nAna",
    ],
)
def test_the_short_way_leaves_what_it_cannot_settle_to_the_long_way(body: str) -> None:
    assert unquoted_reply(body) is None


def _all_lines() -> list[str]:
    lines = list(TRICKY_LINES)
    for body in _corpus_bodies():
        lines.extend(line.body for line in split_lines(normalise(body)))
    return [line for line in lines if "\n" not in line]


def test_the_screens_flag_every_line_a_rule_may_take() -> None:
    flagged_lines = 0
    for line in _all_lines():
        raw = line.rstrip()
        ruled = may_start_header(raw) or is_underscore_rule(raw)
        ruled = ruled or is_signature_delimiter(raw) or is_tagline(raw)
        flagged = ruled_lines(line) == [0]
        assert flagged or not ruled or not raw.strip(), line
        flagged_lines += flagged
    # ... and leave most lines alone, or they would save nothing.
    assert flagged_lines < len(_all_lines()) * 0.6


# What the screens rely on, checked over every character there is.

_ALL = [chr(code) for code in range(sys.maxunicode + 1) if not 0xD800 <= code < 0xE000]
_SCREENED = set(" \t\n-=_~\ue000@:：<>()[]*\"'«»")


def test_fold_drops_only_the_combining_dot() -> None:
    assert [char for char in _ALL if not fold(char)] == ["\u0307"]


def test_fold_makes_no_white_space_digit_or_screened_character_out_of_another() -> None:
    for char in _ALL:
        folded = fold(char)
        if folded == char:
            continue
        assert not any(c.isspace() or c.isdecimal() or c in _SCREENED for c in folded), char
        assert not char.isspace()


def test_the_screen_words_are_folded_single_words() -> None:
    for word in (*TAGLINE_STARTS, *TAGLINE_WORDS):
        assert fold(word) == word and not any(c.isspace() for c in word)


def test_every_character_of_a_folded_text_folds_to_itself() -> None:
    for char in _ALL:
        assert all(fold(c) == c for c in fold(char)), char
