"""The translated templates (templates/<lang>/): each renders, says what it must, and is no English.

Every folder under templates/ is a language. Each has the participant's mails (ack.txt,
answer.txt); a language an expert may read (Italian) has the expert's copy and receipt too.
The checks run on the rendered mail and on the template's own words (its text without the
Jinja2 tags), so a branch that sample data does not reach is still read.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from qa_mailer.config.model import SessionConfig
from qa_mailer.resources import templates_dir
from qa_mailer.route.mails import AttachmentView, QuestionView
from qa_mailer.templates import Templates

TEMPLATES = templates_dir()
LANGUAGES = sorted(path.name for path in TEMPLATES.iterdir() if path.is_dir())

PARTICIPANT_TEMPLATES = ("ack.txt", "answer.txt")
EXPERT_TEMPLATES = ("to_expert.txt", "receipt.txt", "held.txt")
EXPECTED_FILES = {
    "bg": PARTICIPANT_TEMPLATES,
    "ru": PARTICIPANT_TEMPLATES,
    "sr": PARTICIPANT_TEMPLATES,
    "sr-Latn": PARTICIPANT_TEMPLATES,
    "hr": PARTICIPANT_TEMPLATES,
    "tr": PARTICIPANT_TEMPLATES,
    "it": PARTICIPANT_TEMPLATES + EXPERT_TEMPLATES,
}
LANGUAGE_NAMES = {
    "bg": "Bulgarian",
    "ru": "Russian",
    "sr": "Serbian",
    "sr-Latn": "Serbian",
    "hr": "Croatian",
    "tr": "Turkish",
    "it": "Italian",
}

# A participant's name as it would come in each language, in its own script.
NAMES = {
    "bg": "Мария Петрова",
    "ru": "Иван Смирнов",
    "sr": "Милица Јовановић",
    "sr-Latn": "Milica Jovanović",
    "hr": "Ivana Perić",
    "tr": "Ayşe Yılmaz",
    "it": "Giulia Brambilla",
}

# English words that would show a sentence left untranslated. Matched as whole words, so
# "sessione" or "esperto" do not count; the sample data below contains none of them.
ENGLISH_WORDS = (
    "dear",
    "thank",
    "thanks",
    "you",
    "your",
    "the",
    "and",
    "question",
    "questions",
    "answer",
    "answered",
    "answers",
    "expert",
    "session",
    "subject",
    "reply",
    "please",
    "sent",
    "automatically",
    "acknowledgement",
    "received",
    "follow-up",
    "participant",
    "participants",
    "held",
    "organiser",
    "still",
    "open",
    "below",
    "write",
)
ENGLISH = re.compile(r"\b(?:" + "|".join(map(re.escape, ENGLISH_WORDS)) + r")\b", re.IGNORECASE)
JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")

SERVICE = "Klasteri Q&A"
SESSION = SessionConfig(
    number=4,
    title="Legno Arredo Brianza",
    start=datetime(2026, 11, 26, 9, tzinfo=UTC),
    end=datetime(2026, 11, 26, 11, tzinfo=UTC),
    experts=("esperto@brianza.example.it",),
)


def _question(ref: str, follow_up_to: str | None = None) -> QuestionView:
    return QuestionView(
        ref=ref,
        participant="Ivana Perić",
        email="ivana@firma.example.hr",
        country="Hrvatska",
        subject="Brianza 2026",
        text=f"Tekst {ref}:\nkako funkcionira klaster?",
        follow_up_to=follow_up_to,
        asked_at=datetime(2026, 11, 26, 10, 5, tzinfo=UTC),
        language="hr",
        attachments=(AttachmentView("ponuda.pdf", "application/pdf", "120 KB"),),
    )


def _receipt_context(full: bool) -> dict[str, Any]:
    """Everything the receipt can show (full) or nothing but what is always there."""
    some = _question("Q-21")
    return {
        "session": SESSION,
        "service_name": SERVICE,
        "published": [some] if full else [],
        "unanswered": [_question("Q-22"), _question("Q-23", "Q-9")] if full else [],
        "already_published": ["Q-18", "Q-19"] if full else [],
        "already_held": ["Q-20"] if full else [],
        "held": [("Q-24", "ragione di prova")] if full else [],
        "unmatched": ["Saluti da Lissone,\nMarco"] if full else [],
        "hold_reason": "ragione di prova" if full else None,
        "to_correct": [(_question("Q-25"), "ragione di prova")] if full else [],
    }


def _renders(language: str, name: str) -> list[str]:
    """The template rendered with sample data, once for each form it takes."""
    templates = Templates()
    path = f"{language}/{name}"
    participant = NAMES[language]
    if name == "ack.txt":
        return [
            templates.render(
                path,
                participant_name=participant,
                service_name=SERVICE,
                ref="Q-17",
                session=SESSION,
                subject="Brianza 2026",
            )
        ]
    if name == "answer.txt":
        return [
            templates.render(
                path,
                participant_name=participant,
                service_name=SERVICE,
                ref="Q-17",
                session=SESSION,
                answer="Lissone, Meda, Cantù: 1. Brianza.",
                question="Prima riga\n\nterza riga",
            )
        ]
    if name == "to_expert.txt":
        single, follow_up = _question("Q-17"), _question("Q-18", "Q-3")
        batch = [_question("Q-19"), _question("Q-20", "Q-4"), _question("Q-21")]
        return [
            templates.render(path, session=SESSION, question=q, questions=qs)
            for q, qs in ((single, [single]), (follow_up, [follow_up]), (batch[0], batch))
        ]
    if name == "receipt.txt":
        return [templates.render(path, **_receipt_context(full)) for full in (True, False)]
    if name == "held.txt":
        return [
            templates.render(
                path,
                session=SESSION,
                service_name=SERVICE,
                subject="Re: [VC4] Brianza 2026",
                refs="Q-17, Q-18",
                reason="fuori ufficio",
                held=held,
                expert="esperto@brianza.example.it",
            )
            for held in (["A-5"], [])
        ]
    raise AssertionError(f"no sample data for {path}")


def _own_words(language: str, name: str) -> str:
    """The template's text without its Jinja2 tags: the words it adds to every mail."""
    return JINJA_TAG.sub(" ", (TEMPLATES / language / name).read_text("utf-8"))


CASES = [(language, name) for language in LANGUAGES for name in EXPECTED_FILES.get(language, ())]


def test_every_language_has_its_templates() -> None:
    assert set(LANGUAGES) == set(EXPECTED_FILES)
    for language in LANGUAGES:
        present = {path.name for path in (TEMPLATES / language).iterdir()}
        assert present == set(EXPECTED_FILES[language]), language


@pytest.mark.parametrize(("language", "name"), CASES)
def test_first_line_names_the_language(language: str, name: str) -> None:
    first = (TEMPLATES / language / name).read_text("utf-8").split("\n", 1)[0]
    assert first.startswith("{# ") and first.endswith(" #}"), first
    assert LANGUAGE_NAMES[language] in first and f"({language})" in first, first


@pytest.mark.parametrize(("language", "name"), CASES)
def test_renders_without_english(language: str, name: str) -> None:
    for text in [_own_words(language, name), *_renders(language, name)]:
        # A command in backticks (`qa-mailer held list`) is the command's name, not prose.
        text = re.sub(r"`[^`]*`", " ", text)
        assert not ENGLISH.findall(text), (language, name, ENGLISH.findall(text))


@pytest.mark.parametrize("language", LANGUAGES)
def test_participant_mails_name_the_question(language: str) -> None:
    for name in PARTICIPANT_TEMPLATES:
        (text,) = _renders(language, name)
        for value in (NAMES[language], "Q-17", "VC4", "Legno Arredo Brianza", SERVICE):
            assert value in text, (language, name, value)
        # The signature separator, as mail clients recognise it, before the service's name.
        assert f"\n-- \n{SERVICE}" in text, (language, name)
        # The reference must survive a reply: both mails say to keep it in the subject.
        assert text.count("Q-17") >= 2, (language, name)
    (ack,) = _renders(language, "ack.txt")
    assert "Brianza 2026" in ack
    (answer,) = _renders(language, "answer.txt")
    assert "Lissone, Meda, Cantù: 1. Brianza." in answer
    assert "> Prima riga\n>\n> terza riga" in answer


@pytest.mark.parametrize(
    "language", [lang for lang in LANGUAGES if "to_expert.txt" in EXPECTED_FILES[lang]]
)
def test_expert_mails_keep_anchors_and_lines(language: str) -> None:
    single, follow_up, batch = _renders(language, "to_expert.txt")
    assert "[Q-17] Tekst Q-17:" in single and "Q-3" not in single
    assert "[Q-18] Tekst Q-18:" in follow_up and "Q-3" in follow_up
    for ref in ("Q-19", "Q-20", "Q-21"):
        assert f"[{ref}] Ivana Perić (Hrvatska)" in batch
    assert "Q-4" in batch
    for text in (single, batch):
        assert "VC4" in text and "Legno Arredo Brianza" in text
    full, empty = _renders(language, "receipt.txt")
    for ref in ("Q-18", "Q-19", "Q-20", "Q-21", "Q-24", "[Q-22]", "[Q-23]"):
        assert ref in full, ref
    assert "> Saluti da Lissone," in full
    for text in (full, empty):
        assert f"\n-- \n{SERVICE}" in text and "VC4" in text


@pytest.mark.parametrize("language", ["bg", "ru", "sr"])
def test_cyrillic_languages_have_no_latin_words(language: str) -> None:
    for name in EXPECTED_FILES[language]:
        words = _own_words(language, name)
        assert not LATIN.findall(words), (language, name, LATIN.findall(words))
        assert CYRILLIC.search(words)


@pytest.mark.parametrize("language", ["sr-Latn", "hr", "tr", "it"])
def test_latin_languages_have_no_cyrillic(language: str) -> None:
    for name in EXPECTED_FILES[language]:
        assert not CYRILLIC.search(_own_words(language, name)), (language, name)
        for text in _renders(language, name):
            assert not CYRILLIC.search(text), (language, name)
