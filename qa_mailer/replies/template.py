"""The service's own wording in the mail sent to the expert, recognised when it comes back quoted.

The expert's reply quotes the mail ``route/`` sent: an intro line, instructions, and the
questions. Only the questions are answerable; text written under a quoted instruction is the
expert's preamble or closing, never an answer. These patterns follow the wording of the
question mails (templates/); keep them in step when that wording changes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa_mailer.replies.vocab import fold

# A paragraph of the mail's own wording is short; more is someone's text.
_MAX_PARAGRAPH = 600


@dataclass(frozen=True)
class TemplateSentence:
    """A sentence the question mail contains besides the questions."""

    name: str
    description: str
    pattern: re.Pattern[str]  # matched at the start of casefolded, single-spaced text


TEMPLATE_SENTENCES: tuple[TemplateSentence, ...] = (
    TemplateSentence(
        "single-intro",
        "'Question Q-17 from <participant> (<country>), session <code> \"<title>\"'",
        re.compile(r'question\s+q-\d+\s+from\b[^"“«]{0,200}(?:["“«][^"”»]{0,300}["”»])?'),
    ),
    TemplateSentence(
        "batch-intro",
        "'Session <code> \"<title>\": 3 questions.'",
        re.compile(r"session\b.{0,300}?:\s*\d+\s+questions?\.?"),
    ),
    TemplateSentence(
        "reply-instruction",
        "'Reply to this mail and write your answer below the question.'",
        re.compile(r"reply to this (?:mail|message|e-?mail)\b[^.]{0,200}\.?"),
    ),
    TemplateSentence(
        "batch-instruction",
        "'Write each answer below its question; questions you leave unanswered stay open.'",
        re.compile(r"write (?:each|your) answers?\b[^.]{0,200}\.?"),
    ),
)


def is_template(lines: Sequence[str]) -> bool:
    """True when the lines hold nothing but the service's own wording."""
    return _matches_sentences(lines) or _matches_learnt(lines)


def _matches_sentences(lines: Sequence[str]) -> bool:
    rest = fold(" ".join(" ".join(lines).split()))
    if not rest or len(rest) > _MAX_PARAGRAPH:
        return False
    progress = True
    while rest and progress:
        progress = False
        for pattern in _SENTENCE_PATTERNS:
            match = pattern.match(rest)
            if match and match.end():
                rest = rest[match.end() :].lstrip(" .;:")
                progress = True
    return not rest


def _matches_learnt(lines: Sequence[str]) -> bool:
    """Every line is a whole line of a template's wording (a mail client may have wrapped it
    onto up to three lines)."""
    if not _learnt:
        return False
    texts = [" ".join(line.split()) for line in lines if line.strip()]
    if not texts or sum(map(len, texts)) > _MAX_PARAGRAPH:
        return False
    position = 0
    while position < len(texts):
        for end in range(position + 1, min(position + 3, len(texts)) + 1):
            candidate = fold(" ".join(texts[position:end]))
            if any(pattern.fullmatch(candidate) for pattern in _learnt):
                position = end
                break
        else:
            return False
    return True


_SENTENCE_PATTERNS = tuple(sentence.pattern for sentence in TEMPLATE_SENTENCES)
# The wording of the templates this service renders, in every language (qa_mailer/wording.py).
_learnt: tuple[re.Pattern[str], ...] = ()


def learn(patterns: Sequence[re.Pattern[str]]) -> None:
    """Recognise these lines of our own wording too (the service's templates, read at start).

    Process-wide: the reply parser is called from many places, all of which read mail that
    quotes the same templates. A service calls this once it has its templates.
    """
    global _learnt
    _learnt = tuple(patterns)
