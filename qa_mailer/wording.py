"""The service's own wording, learnt from the templates it renders, for the reply parser.

The expert's reply quotes the mail we sent: its intro, its instructions, the lines saying
when a question was asked. Text under those lines is never an answer. The parser used to
know that wording as English patterns; a translated or overridden ``to_expert.txt`` then
broke answer splitting. Here the wording is read from the templates themselves, in every
language they exist in: each mail the expert can reply to is rendered from two sets of
sample data that differ in every value (names, references, sessions, dates, counts); what
is the same in both renders is our wording, what differs is a value and becomes a wildcard.
The patterns go to ``replies.template`` (``learn``), which matches them beside its own.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from qa_mailer.answer.outcome import ReplyOutcome
from qa_mailer.config import Config
from qa_mailer.replies.vocab import fold
from qa_mailer.route.mails import AttachmentView, MergedView, QuestionView
from qa_mailer.templates import RENDER_ERRORS, Templates

# A value in a line of our wording: a name, a date, a count. Bounded, so matching stays linear.
_VALUE = r".{0,300}?"
# A line shorter than this, once the values are out, is not worth recognising ("(", ":").
_MIN_FIXED = 8
_DIGITS = re.compile(r"\d+")


def wording_patterns(config: Config, templates: Templates) -> tuple[re.Pattern[str], ...]:
    """Patterns of every line of our wording in the mails an expert replies to, all languages."""
    found: dict[str, re.Pattern[str]] = {}
    for language in templates.languages():
        for first, second in _sample_pairs(config):
            for name, context in (("to_expert.txt", _to_expert), ("receipt.txt", _receipt)):
                try:
                    one = templates.render(name, language, **context(config, first))
                    two = templates.render(name, language, **context(config, second))
                except RENDER_ERRORS:
                    # The start-up check reports a template that cannot render.
                    continue
                for pattern in _line_patterns(one, two, first, second):
                    found.setdefault(pattern, re.compile(pattern))
    return tuple(found.values())


def _line_patterns(one: str, two: str, first: _Sample, second: _Sample) -> list[str]:
    lines_one = [" ".join(line.split()) for line in one.splitlines()]
    lines_two = [" ".join(line.split()) for line in two.splitlines()]
    if len(lines_one) != len(lines_two):
        return []
    patterns = []
    for a, b in zip(lines_one, lines_two, strict=True):
        if not a or first.is_content(a) or second.is_content(b):
            continue
        pattern = _common_pattern(fold(a), fold(b))
        if pattern is not None:
            patterns.append(pattern)
    return patterns


def _common_pattern(a: str, b: str) -> str | None:
    """A regex matching both lines: their common parts literal, what differs a wildcard.

    A value never ends inside a word: "written in Croatian." and "written in Russian." share
    "ian.", which is part of the value, not our wording. Numbers left literal are counts both
    renders share ("2 questions"): they match any count.
    """
    if a == b:
        return _literal(a) if len(a) >= _MIN_FIXED else None
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    spans = [
        (block.a, block.a + block.size)
        for block in matcher.get_matching_blocks()
        # Runs of one or two characters in common are chance ("a" in two names).
        if block.size >= 3 or (block.size and block.a == 0)
    ]
    kept: list[tuple[int, int]] = []
    for start, end in spans:
        # Trim a literal back to whole words where it touches a value.
        if start > 0 and a[start - 1].isalnum():
            while start < end and a[start].isalnum():
                start += 1
        if end < len(a) and a[end].isalnum():
            while end > start and a[end - 1].isalnum():
                end -= 1
        if end - start >= 2:
            kept.append((start, end))
    if not kept or kept[0][0] != 0:
        # A pattern that starts with a value could skip over the expert's own words to find
        # its first literal: such lines are not learnt.
        return None
    fixed = sum(end - start for start, end in kept)
    if fixed < _MIN_FIXED or fixed * 3 < len(a):
        return None
    parts: list[str] = []
    position = 0
    for start, end in kept:
        if start > position:
            parts.append(_VALUE)
        parts.append(_literal(a[start:end]))
        position = end
    if position < len(a):
        parts.append(_VALUE)
    return "".join(parts)


def _literal(text: str) -> str:
    return _DIGITS.sub(r"\\d{1,6}", re.escape(text))


class _Sample:
    """One set of sample values; a second set differs in every one."""

    def __init__(self, seed: int, count: int):
        self.seed = seed
        self.count = count
        names = [("Ana Horvat", "Hrvatska"), ("Иван Петров", "Россия"), ("Ayşe Yılmaz", "Türkiye")]
        self.questions = [
            QuestionView(
                ref=f"Q-{seed * 100 + n}",
                participant=names[(seed + n) % len(names)][0],
                email=f"p{seed}{n}@example.org",
                country=names[(seed + n) % len(names)][1],
                subject=f"Subject {seed}-{n}",
                text=f"QUESTIONTEXT{seed}X{n}",
                follow_up_to=f"Q-{seed * 10 + n}",
                # Summer and winter: the time zone's abbreviation differs too (CET, CEST).
                asked_at=datetime(2026, 6 * seed, seed, 9, 7 * seed, tzinfo=UTC)
                - timedelta(hours=n),
                language=("hr", "ru", "tr")[(seed + n) % 3],
                attachments=(AttachmentView(f"file{seed}{n}.pdf", "application/pdf", "9 KB"),),
                similar_to=f"Q-{seed * 100 + 70 + n}",
                merged=(
                    MergedView(f"Q-{seed * 100 + 50 + n}", names[(seed + n + 1) % len(names)][0]),
                ),
            )
            for n in range(count)
        ]

    def is_content(self, line: str) -> bool:
        """Lines that show a question (its text, its [Q-n] anchor) or a quoted text: not ours."""
        return "questiontext" in line.casefold() or any(
            line.startswith(f"[{q.ref}]") for q in self.questions
        )


def _sample_pairs(config: Config) -> list[tuple[_Sample, _Sample]]:
    # The two renders of a pair show as many questions (so their lines align); the counts
    # take every plural form the programme's languages have: one, few, many, and 21.
    return [(_Sample(1, count), _Sample(2, count)) for count in (1, 2, 5, 21)]


def _to_expert(config: Config, sample: _Sample) -> dict[str, object]:
    session = replace(
        config.sessions[sample.seed % len(config.sessions)],
        number=sample.seed,
        title=("Social environment", "Legno Arredo Brianza")[sample.seed % 2],
    )
    return {
        "session": session,
        "question": sample.questions[0],
        "questions": sample.questions,
        "service_name": config.service_name,
    }


def _receipt(config: Config, sample: _Sample) -> dict[str, object]:
    context = _to_expert(config, sample)
    questions = sample.questions
    outcome = ReplyOutcome()
    return {
        "session": context["session"],
        "service_name": config.service_name,
        "published": questions[:1],
        "unanswered": questions,
        "already_published": [q.ref for q in questions],
        "already_held": [q.ref for q in questions],
        "held": [(q.ref, f"reason {sample.seed}") for q in questions],
        "unmatched": [f"QUESTIONTEXT{sample.seed} unmatched"],
        "hold_reason": outcome.hold_reason or f"reason {sample.seed}",
        "to_correct": [(q, f"reason {sample.seed}") for q in questions],
    }
