"""Greetings above and closings below an answer: the expert's words, but not the answer.

"Dear colleagues," before answers written on top goes to the preamble; "Best regards,\\nAna"
after the last answer stays in the new text but is not sent to the participant as part of it.
"""

from __future__ import annotations

import re

from qa_mailer.replies import vocab
from qa_mailer.replies.attribution_text import looks_like_name
from qa_mailer.replies.lines import MAX_LINE

# A closing is the phrase alone or with a name: "Thanks,", "Best, Ana", "С уважением, Иван".
_CLOSING = re.compile(rf"^(?:{vocab.alternation(vocab.CLOSINGS)})(?=[\s,.!]|$)")
# Lines of a signature block under a name: titles, addresses, phones, mail and web addresses.
_CONTACT = re.compile(r"\d|@|www\.|https?://")
_MAX_SIGNATURE_BLOCK = 6
_GREETING = re.compile(rf"^(?:{vocab.alternation(vocab.GREETINGS)})(?:[\s,!:.]|$)")
# A closing sits in the last few lines; one higher up is part of the answer.
_CLOSING_REACH = 8
_MAX_GREETING = 60


def is_closing(line: str) -> bool:
    """True when the line is a closing ("Best regards,", "С уважением, Иван", "Pozdrav")."""
    text = " ".join(line[:MAX_LINE].split())
    folded = vocab.fold(text)
    match = _CLOSING.match(folded)
    if not match or len(text) > 60:
        return False
    # "Thanks, Ana" closes; "Thanks for the question!" is a sentence of the answer.
    rest = folded[match.end() :].strip(" ,.!")
    name = text[len(text) - len(rest) :].split() if rest else []
    return len(name) <= 3 and all(word[0].isupper() for word in name)


def strip_closing(text: str) -> str:
    """``text`` without a closing, or a bare name, and the signature lines under it."""
    lines = text.rstrip().split("\n")
    written = [index for index, line in enumerate(lines) if line.strip()]
    for index in written[-_CLOSING_REACH:]:
        if not is_closing(lines[index]):
            continue
        if index != written[0]:
            return "\n".join(lines[:index]).rstrip()
        # Nothing but a closing and a signature: under the last question the expert left
        # unanswered, this is how the reply ends, not an answer.
        rest = [line for line in lines[index + 1 :] if line.strip()]
        if not rest or _is_signature_block(rest):
            return ""
    return _strip_name(lines).strip("\n")


def _strip_name(lines: list[str]) -> str:
    # "Maria", or "Prof. Maria Rossi" over a department, phone and address, set apart from
    # the last answer by a blank line: a signature without its delimiter.
    blank = max((index for index, line in enumerate(lines) if not line.strip()), default=-1)
    tail = [line for line in lines[blank + 1 :] if line.strip()]
    head = "\n".join(lines[: blank + 1])
    if blank > 0 and head.strip() and _is_signature_block(tail):
        return head.rstrip()
    return "\n".join(lines)


def _is_signature_block(tail: list[str]) -> bool:
    if not 0 < len(tail) <= _MAX_SIGNATURE_BLOCK or not looks_like_name(tail[0]):
        return False
    rest = tail[1:]
    return all(looks_like_name(line) or _CONTACT.search(line) for line in rest) and (
        len(tail) <= 3 or any(_CONTACT.search(line) for line in rest)
    )


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
