"""Reply understanding, first version: trim quotes and signatures, pair answers with questions.

This is the simple version the service starts with; the reply issue replaces it with rules for
every common client and the programme's languages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa_mailer.parse.html import html_to_text

_QUOTE_HEADER = re.compile(
    r"^\s*(?:on\b.{0,200}\bwrote:|-{2,}\s*original message\s*-{2,}|from:\s.+|.{0,200}(?:пишет|написал\w*|написа|je napisao\w*|yazdı):)\s*$",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(r"^(?:-- ?|sent from my .*)$", re.IGNORECASE)
_REF = re.compile(r"\[?Q-(\d+)\]?")


@dataclass(frozen=True)
class QuestionRef:
    ref: str
    text: str


@dataclass(frozen=True)
class Answer:
    quoted: str
    ref: str | None
    answer: str


@dataclass(frozen=True)
class ParsedReply:
    reply: str
    new_text: str
    preamble: str
    answers: tuple[Answer, ...]


def parse_reply(
    text: str | None = None, html: str | None = None, questions: Sequence[QuestionRef] = ()
) -> ParsedReply:
    """Trim a reply and split it into answers under quoted questions."""
    body = text if text and text.strip() else html_to_text(html or "")
    lines = body.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _QUOTE_HEADER.match(line):
            following = next((rest for rest in lines[index + 1 :] if rest.strip()), "")
            # A header above quoted lines introduces an inline reply; otherwise what follows
            # is the quoted history.
            if following.startswith(">"):
                continue
            break
        if _SIGNATURE.match(line.rstrip()):
            break
        kept.append(line.rstrip())
    while kept and (not kept[-1].strip() or kept[-1].startswith(">")):
        kept.pop()
    reply = "\n".join(kept).strip()
    blocks = _blocks(kept)
    new_text = "\n\n".join(text for quoted, text in blocks if not quoted and text)
    answers: list[Answer] = []
    preamble = ""
    for index, (quoted, content) in enumerate(blocks):
        if quoted:
            continue
        previous = blocks[index - 1][1] if index > 0 and blocks[index - 1][0] else None
        if previous is None:
            preamble = preamble or content
            continue
        match = _REF.search(previous)
        ref = (
            f"Q-{match.group(1)}" if match else (questions[0].ref if len(questions) == 1 else None)
        )
        answers.append(Answer(quoted=previous, ref=ref, answer=content))
    return ParsedReply(
        reply=reply, new_text=new_text.strip(), preamble=preamble, answers=tuple(answers)
    )


def _blocks(lines: list[str]) -> list[tuple[bool, str]]:
    """Consecutive quoted / unquoted runs, quote markers removed, empty runs dropped."""
    blocks: list[tuple[bool, list[str]]] = []
    for line in lines:
        quoted = line.startswith(">")
        content = re.sub(r"^(?:>\s?)+", "", line) if quoted else line
        if not quoted and not line.strip() and blocks and blocks[-1][0]:
            continue
        if blocks and blocks[-1][0] == quoted:
            blocks[-1][1].append(content)
        else:
            blocks.append((quoted, [content]))
    return [(quoted, "\n".join(text).strip()) for quoted, text in blocks if "\n".join(text).strip()]
