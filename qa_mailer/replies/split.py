"""Split a classified reply into answers: one per quoted question with text under it.

The reply is read as turns: the text on top, then each quoted block with the text written
under it. Text under a block goes to the last question the block quotes (the one right above
it), to all of them when it says so ("Both: ..." or naming every reference), or item by item
when it is a numbered or referenced list. When nothing was written under any question, the
text on top is the answer: split by its list, or whole when only one question was asked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa_mailer.replies import vocab
from qa_mailer.replies.closings import split_greeting, strip_closing
from qa_mailer.replies.items import Item, split_items
from qa_mailer.replies.lines import TEXT_OR_BLANK, Kind, Line
from qa_mailer.replies.model import Answer
from qa_mailer.replies.questions import BRACKETED_REF, MENTIONED_REF, Questions
from qa_mailer.replies.trim import QuoteBlock, join, quote_blocks
from qa_mailer.replies.units import Unit, question_units

# Quoted with markers, or unquoted history under a header.
_QUOTED = frozenset({Kind.QUOTE, Kind.HISTORY})
# An item whose words are this much its question's is the question, not an answer.
_REPEATED_QUESTION = 0.9
_BOTH = re.compile(rf"(?:^|[\s(])(?:{vocab.alternation(vocab.BOTH)})(?=[\s,.:;!)]|$)")


def split_reply(lines: Sequence[Line], questions: Questions) -> tuple[str, tuple[Answer, ...]]:
    """Return (preamble, answers) for a classified reply."""
    blocks = quote_blocks(lines)
    top = _written(lines, 0, blocks[0].start if blocks else len(lines))
    quoted_refs = _refs_in_order(lines, questions)
    order = questions.refs or quoted_refs
    preamble = [top]
    answers: list[Answer] = []
    asked = False
    after: str | None = None
    for number, block in enumerate(blocks):
        end = blocks[number + 1].start if number + 1 < len(blocks) else len(lines)
        text = _written(lines, block.end + 1, end)
        quoted = question_units(_quoted(lines, block), questions, after)
        units = [unit for unit in quoted if unit.question]
        if not units:
            # Under the mail's intro or instructions: preamble before the first question,
            # a closing after it.
            if not asked:
                preamble.append(text)
            continue
        asked = True
        after = units[-1].ref or after
        if text.strip():
            answers.extend(_answers_under(units, text, order, questions))
    if answers:
        return join(preamble), _merge(answers)
    return _answers_on_top(top, order, quoted_refs or questions.refs, questions)


def split_unquoted(text: str, questions: Questions) -> tuple[str, tuple[Answer, ...]]:
    """What split_reply returns for a reply without a quoted line: ``text`` is all on top."""
    # split_reply's last line with no block: no quoted reference, so the caller's order.
    return _answers_on_top(text, questions.refs, questions.refs, questions)


def _answers_under(
    units: Sequence[Unit], text: str, order: Sequence[str], questions: Questions
) -> list[Answer]:
    body = strip_closing(text)
    if not body.strip():
        return []
    if len(units) >= 2:
        listed = split_items(body, order, questions)
        if listed is not None:
            quoted = {unit.ref: unit.quoted for unit in units}
            return [
                Answer(quoted.get(ref, ""), ref, item.text)
                for item in listed[1]
                for ref in item.refs
                if item.text
            ]
        if _answers_all(body, units):
            return [Answer(unit.quoted, unit.ref, body) for unit in units]
    last = units[-1]
    return [Answer(last.quoted, last.ref, body)]


def _answers_all(body: str, units: Sequence[Unit]) -> bool:
    first_line = vocab.fold(body.strip().split("\n", 1)[0])
    if _BOTH.search(first_line[:200]):
        return True
    refs = {unit.ref for unit in units}
    return None not in refs and all(ref in body for ref in refs if ref)


def _answers_on_top(
    top: str, order: Sequence[str], asked: Sequence[str], questions: Questions
) -> tuple[str, tuple[Answer, ...]]:
    # ``order`` numbers a list ("1." is the caller's first question); ``asked`` is what the
    # quote shows was asked in this mail. With one question asked, a numbered list is steps
    # of its answer, and a plain answer has one owner.
    if not top.strip():
        return "", ()
    listed = split_items(top, order if len(asked) >= 2 else (), questions)
    if listed is not None and not any(_is_answer_item(item, questions) for item in listed[1]):
        # Every "item" is a question quoted without markers (under a header too unsure to
        # cut): the question is never its own answer.
        listed = None
    if listed is not None:
        preamble, items = listed
        answers = [
            Answer("", ref, strip_closing(item.text))
            for item in items
            for ref in item.refs
            if strip_closing(item.text)
        ]
        return preamble, _merge(answers)
    if len(asked) == 1:
        greeting, rest = split_greeting(top)
        body = strip_closing(rest)
        return greeting, (Answer("", asked[0], body),) if body else ()
    return top, ()


def _is_answer_item(item: Item, questions: Questions) -> bool:
    text = item.text.strip()
    return bool(text) and not all(
        questions.share(ref, text) >= _REPEATED_QUESTION for ref in item.refs if ref
    )


def _merge(answers: Sequence[Answer]) -> tuple[Answer, ...]:
    # A question the expert cut in two, answering each half, is still one answer.
    merged: list[Answer] = []
    for answer in answers:
        previous = merged[-1] if merged else None
        if previous is not None and answer.ref is not None and previous.ref == answer.ref:
            merged[-1] = Answer(
                join([previous.quoted, answer.quoted]) if answer.quoted else previous.quoted,
                answer.ref,
                f"{previous.answer}\n\n{answer.answer}",
            )
        else:
            merged.append(answer)
    return tuple(merged)


def _written(lines: Sequence[Line], start: int, end: int) -> str:
    return join(
        line.raw if line.kind is Kind.TEXT else ""
        for line in lines[start:end]
        if line.kind in TEXT_OR_BLANK
    )


def _quoted(lines: Sequence[Line], block: QuoteBlock) -> list[str]:
    return [
        "" if line.blank else line.body
        for line in lines[block.start : block.end + 1]
        if not line.header
    ]


def _refs_in_order(lines: Sequence[Line], questions: Questions) -> list[str]:
    quoted = [line.body for line in lines if line.kind in _QUOTED]
    bracketed = any(BRACKETED_REF.search(text) for text in quoted)
    pattern = BRACKETED_REF if bracketed else MENTIONED_REF
    order: list[str] = []
    for text in quoted:
        for match in pattern.finditer(text):
            ref = questions.resolve(match.group(1), match.group(2))
            if ref not in order:
                order.append(ref)
    return order
