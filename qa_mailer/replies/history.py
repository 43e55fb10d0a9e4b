"""Answers typed into the quoted original itself, as Outlook users do.

Outlook quotes the mail replied to without ``>`` markers, under its From/Sent/To block, and
an expert answering inline types between the questions. When nothing else in the reply
answers a question, the unquoted history is read again: paragraphs that are questions (a
``[Q-17]`` reference, or words matching a question sent) or the service's own wording count as
quoted, anything else in between as the expert's answers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa_mailer.replies.lines import Kind, Line
from qa_mailer.replies.questions import BRACKETED_REF, Questions
from qa_mailer.replies.signatures import is_signature_delimiter
from qa_mailer.replies.template import is_template

# A line belongs to the question above it when this much of its words are the question's.
_QUESTION_SHARE = 0.6
# How people mark what they type into someone else's text: their initials or "Answer:",
# or the "[Name]" prefix Outlook adds to inline comments.
_NAME_MARK = r"\[(?![A-Za-z]{1,4}\s*[-‐‑‒–—]\s*\d)[^\]\n]{2,40}\]\s"
_ANSWER_MARK = re.compile(
    r"^\s*(?:(?:[^\W\d_]{1,3}|answer|antwort|réponse|respuesta|risposta|odpowiedź|resposta"
    rf"|svar|ответ|отговор|odgovor|одговор|cevap|yanıt|відповідь)\s*:\s|{_NAME_MARK})",
    re.IGNORECASE,
)
# The "[Maria Rossi] " mark itself is not part of the answer; initials and "Answer:" stay,
# since "Da:" ("yes") may be a word of it.
_STRIPPED_MARK = re.compile(rf"^\s*{_NAME_MARK}\s*")


def reread_history(lines: Sequence[Line], questions: Questions) -> list[Line] | None:
    """Relabel unquoted history as quote and answers; None when it holds no answers."""
    start = next((i for i, line in enumerate(lines) if line.kind is Kind.HISTORY), None)
    if start is None:
        return None
    labels: dict[int, Kind] = {}
    asked = False
    answered = False
    for paragraph in _paragraphs(lines, start):
        texts = [lines[index].body for index in paragraph]
        ref = _question_ref(texts, questions)
        if ref is not None:
            asked = True
            split = _question_length(texts, ref, questions)
            labels.update(dict.fromkeys(paragraph[:split], Kind.QUOTE))
            labels.update(dict.fromkeys(paragraph[split:], Kind.TEXT))
            answered = answered or split < len(paragraph)
        elif asked:
            kind = Kind.QUOTE if is_template(texts) else Kind.TEXT
            labels.update(dict.fromkeys(paragraph, kind))
            answered = answered or kind is Kind.TEXT
    if not answered:
        return None
    first, last = min(labels), max(labels)
    for index in range(first, last + 1):
        if lines[index].blank:
            labels[index] = Kind.BLANK
    return [
        _relabel(_unmarked(line, labels, index), labels.get(index))
        for index, line in enumerate(lines)
    ]


def _unmarked(line: Line, labels: dict[int, Kind], index: int) -> Line:
    # The first line of an answer may carry the mark Outlook puts before inline comments.
    if labels.get(index) is not Kind.TEXT or labels.get(index - 1) is Kind.TEXT:
        return line
    mark = _STRIPPED_MARK.match(line.raw)
    if mark is None or not line.raw[mark.end() :].strip():
        return line
    return Line(raw=line.raw[mark.end() :], depth=line.depth, body=line.raw[mark.end() :])


def _paragraphs(lines: Sequence[Line], start: int) -> list[list[int]]:
    paragraphs: list[list[int]] = []
    current: list[int] = []
    for index in range(start, len(lines)):
        line = lines[index]
        # The original's own quoted history or signature ends what the expert could answer in.
        if paragraphs and (line.header or is_signature_delimiter(line.body)):
            break
        if line.blank:
            if current:
                paragraphs.append(current)
            current = []
        else:
            current.append(index)
    if current:
        paragraphs.append(current)
    return paragraphs


def _question_ref(texts: Sequence[str], questions: Questions) -> str | None:
    anchor = BRACKETED_REF.search(texts[0])
    if anchor:
        return questions.resolve(anchor.group(1), anchor.group(2))
    return questions.match("\n".join(texts)) if questions else None


def _question_length(texts: Sequence[str], ref: str, questions: Questions) -> int:
    # Lines typed right under the question (no blank line between) are told apart by their
    # words when the question's text is known, and otherwise only by an answer mark.
    known = ref in questions.refs
    for number, text in enumerate(texts[1:], start=1):
        if _ANSWER_MARK.match(text) or (known and questions.share(ref, text) < _QUESTION_SHARE):
            return number
    return len(texts)


def _relabel(line: Line, kind: Kind | None) -> Line:
    if kind is Kind.QUOTE:
        return Line(raw=f"> {line.raw}", depth=1, body=line.raw, kind=Kind.QUOTE)
    if kind is Kind.TEXT or kind is Kind.BLANK:
        return Line(raw=line.raw, depth=0, body=line.raw, kind=kind)
    return line
