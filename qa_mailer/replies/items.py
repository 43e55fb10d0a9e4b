"""Answers written as a list: "1. ...", "2) ...", "Q-17: ...", "Re Q-18 - ...", "[Q-19] ...".

A list with references says which question each item answers. A numbered list maps "1." to
the first question (the caller's order, or the order the references appear in the quote),
and counts only when it runs 1, 2, 3, ... over more than one question, so that a numbered
list of steps inside a single answer is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qa_mailer.replies.questions import DASH, Questions

# Words some experts put before the reference: "Re Q-18", "Answer to Q-17", "Ответ на Q-17".
_LEAD = (
    r"(?:(?:re|ad|answer|antwort|réponse|reponse|respuesta|risposta|antwoord|odpowiedź"
    r"|odpowiedz|resposta|svar|ответ|отговор|odgovor|одговор|cevap|yanıt|відповідь)\.?:?\s+"
    r"(?:(?:to|for|на|na|za|für|à|a|op|do|till|på|til)\s+)?)"
)
_ONE_REF = rf"Q\s?{DASH}?\s?\d{{1,6}}"
_JOIN = r"\s*(?:,|&|/|\+|\band\b|\bи\b|\bi\b|\bve\b|\bund\b|\bet\b|\by\b|\be\b|\ben\b|\boraz\b)\s*"
_REF_LIST = rf"{_ONE_REF}(?:{_JOIN}(?:Q\s?{DASH}?\s?)?\d{{1,6}})*"
_REF_HEAD = re.compile(
    rf"^\s{{0,3}}{_LEAD}?(?:\[\s*(?P<bracketed>{_REF_LIST})\s*\]\s*[.:)]?"
    rf"|\(?(?P<plain>{_REF_LIST})\)?\s*(?:[.:)]+|\s{DASH}(?=\s)|{DASH}(?=\s)|$))",
    re.IGNORECASE,
)
# Every reference head holds one reference (_ONE_REF, case aside): a text without one has no
# head, and one search says so instead of the head pattern on every line. Spelt with [Qq]
# (the only letters that match "Q" ignoring case) and without the flag, which makes the
# regex engine fold the case of every character it reads.
_ANY_REF = re.compile(rf"[Qq]\s?{DASH}?\s?\d")
_NUMBER_HEAD = re.compile(rf"^{_LEAD}?\(?(?P<number>\d{{1,2}})\s*[.):](?=\s|$)", re.IGNORECASE)
_NUMBER = re.compile(r"\d{1,6}")


@dataclass(frozen=True)
class Item:
    """One answer of a list, with the questions it answers."""

    refs: tuple[str | None, ...]
    text: str


def split_items(
    text: str, order: Sequence[str], questions: Questions
) -> tuple[str, list[Item]] | None:
    """Split ``text`` into listed answers: (text before the list, items), or None."""
    lines = text.split("\n")
    heads = _ref_heads(lines, questions) if _ANY_REF.search(text) else []
    heads = heads or _number_heads(lines, order)
    if not heads:
        return None
    items: list[Item] = []
    for number, (start, refs, rest) in enumerate(heads):
        end = heads[number + 1][0] if number + 1 < len(heads) else len(lines)
        body = "\n".join([rest, *lines[start + 1 : end]]).strip("\n")
        items.append(Item(refs, body))
    return "\n".join(lines[: heads[0][0]]).strip("\n"), items


_Head = tuple[int, tuple[str | None, ...], str]


def _ref_heads(lines: Sequence[str], questions: Questions) -> list[_Head]:
    heads: list[_Head] = []
    for index, line in enumerate(lines):
        match = _REF_HEAD.match(line[:200])
        if match:
            listed = match.group("bracketed") or match.group("plain")
            refs = tuple(questions.resolve("Q", number) for number in _NUMBER.findall(listed))
            heads.append((index, refs, line[match.end() :].strip()))
    return heads


def _number_heads(lines: Sequence[str], order: Sequence[str]) -> list[_Head]:
    if len(order) < 2:
        return []
    heads: list[_Head] = []
    expected = 1
    for index, line in enumerate(lines):
        match = _NUMBER_HEAD.match(line[:200])
        # Only the next number in the run counts; a "1." further down starts a list of steps
        # inside an answer.
        if match and int(match.group("number")) == expected and expected <= len(order):
            heads.append((index, (order[expected - 1],), line[match.end() :].strip()))
            expected += 1
    return heads if len(heads) >= 2 else []
