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
    rest = fold(" ".join(" ".join(lines).split()))
    if not rest or len(rest) > _MAX_PARAGRAPH:
        return False
    progress = True
    while rest and progress:
        progress = False
        for sentence in TEMPLATE_SENTENCES:
            match = sentence.pattern.match(rest)
            if match and match.end():
                rest = rest[match.end() :].lstrip(" .;:")
                progress = True
    return not rest
