"""Greetings above and closings below an answer: the expert's words, but not the answer.

"Dear colleagues," before answers written on top goes to the preamble; "Best regards,\\nAna"
after the last answer stays in the new text but is not sent to the participant as part of it.
"""

from __future__ import annotations

import re

from qa_mailer.replies import vocab
from qa_mailer.replies.headers import looks_like_name
from qa_mailer.replies.lines import MAX_LINE

# A closing is the phrase alone or with a short name: "Thanks,", "Best, Ana", "С уважением".
_CLOSING = re.compile(
    rf"^(?:{vocab.alternation(vocab.CLOSINGS)})\s*[,.!]*(?:\s+\S+(?:\s+\S+){{0,2}})?\s*$"
)
_GREETING = re.compile(rf"^(?:{vocab.alternation(vocab.GREETINGS)})(?:[\s,!:.]|$)")
# A closing sits in the last few lines; one higher up is part of the answer.
_CLOSING_REACH = 8
_MAX_GREETING = 60


def is_closing(line: str) -> bool:
    """True when the line opens a closing ("Best regards,", "С уважением,", "Pozdrav")."""
    words = vocab.fold(" ".join(line[:MAX_LINE].split()))
    return bool(_CLOSING.match(words)) and len(words) <= 60


def strip_closing(text: str) -> str:
    """``text`` without a closing, or a bare name, and the signature lines under it."""
    lines = text.rstrip().split("\n")
    written = [index for index, line in enumerate(lines) if line.strip()]
    for index in written[-_CLOSING_REACH:]:
        if is_closing(lines[index]) and index != written[0]:
            return "\n".join(lines[:index]).rstrip()
    return _strip_name(lines).strip("\n")


def _strip_name(lines: list[str]) -> str:
    # "Maria" or "Prof. Maria Rossi\nUniversity of Bologna" under the last answer, set apart
    # by a blank line: a signature without its delimiter.
    blank = max((index for index, line in enumerate(lines) if not line.strip()), default=-1)
    tail = [line for line in lines[blank + 1 :] if line.strip()]
    head = "\n".join(lines[: blank + 1])
    if blank > 0 and head.strip() and 0 < len(tail) <= 3 and all(map(looks_like_name, tail)):
        return head.rstrip()
    return "\n".join(lines)


def split_greeting(text: str) -> tuple[str, str]:
    """Split a leading greeting line ("Dear Ivan,") off ``text``: (greeting, rest)."""
    lines = text.strip("\n").split("\n")
    first = lines[0].strip()
    alone = len(lines) == 1 or not lines[1].strip() or first.endswith((",", "!", ":"))
    if (
        len(lines) > 1
        and alone
        and len(first) <= _MAX_GREETING
        and _GREETING.match(vocab.fold(first))
    ):
        return first, "\n".join(lines[1:]).strip("\n")
    return "", text.strip("\n")
