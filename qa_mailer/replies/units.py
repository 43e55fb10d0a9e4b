"""Cut a quoted block into the questions it quotes.

A block quoting a batch mail may hold several questions (the expert answered only the last,
or answered two at once), an intro line and instructions. Units start where a ``[Q-17]``
reference stands; without references, each paragraph is matched to the questions by its words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qa_mailer.replies.questions import BRACKETED_REF, MENTIONED_REF, Questions
from qa_mailer.replies.template import is_template


@dataclass(frozen=True)
class Unit:
    """A piece of a quoted block: one question, or text that is no question."""

    lines: tuple[str, ...]
    ref: str | None
    question: bool

    @property
    def quoted(self) -> str:
        """The quoted text, blank lines at either end removed."""
        return "\n".join(self.lines).strip("\n")


def question_units(lines: Sequence[str], questions: Questions, after: str | None) -> list[Unit]:
    """Split a quoted block (markers removed) into units, in order.

    ``after`` is the question the previous block ended with, to settle ties in matching.
    """
    anchors = [index for index, line in enumerate(lines) if BRACKETED_REF.search(line)]
    if not anchors:
        anchors = [index for index, line in enumerate(lines) if MENTIONED_REF.search(line)]
    if anchors:
        return _by_anchor(lines, anchors, questions, after)
    return _by_words(lines, questions, after)


def _by_anchor(
    lines: Sequence[str], anchors: list[int], questions: Questions, after: str | None
) -> list[Unit]:
    units: list[Unit] = []
    lead = lines[: anchors[0]]
    if any(line.strip() for line in lead):
        # What comes before the first reference is the rest of a question the expert split,
        # or the mail's intro: only its words can tell.
        units.extend(_by_words(lead, questions, after))
    for number, start in enumerate(anchors):
        end = anchors[number + 1] if number + 1 < len(anchors) else len(lines)
        ref = next(questions.refs_in(lines[start]), None)
        units.append(Unit(_without_template_tail(lines[start:end]), ref, question=True))
    return units


def _by_words(lines: Sequence[str], questions: Questions, after: str | None) -> list[Unit]:
    if not questions:
        # Nothing to compare with: any quoted text but the mail's own wording may be a
        # question whose reference was cut away. Text that starts mid-sentence, in lower
        # case, is the rest of the question quoted just before it.
        body = _without_template_tail(lines)
        first = next((line.strip() for line in body if line.strip()), "")
        ref = after if first[:1].islower() else None
        return [Unit(body, ref, question=bool(body) and not is_template(body))]
    units: list[Unit] = []
    for paragraph in _paragraphs(lines):
        ref = None if is_template(paragraph) else questions.match("\n".join(paragraph), after)
        if units and ref is not None and units[-1].ref == ref:
            units[-1] = Unit((*units[-1].lines, "", *paragraph), ref, question=True)
        else:
            units.append(Unit(paragraph, ref, question=ref is not None))
        after = ref or after
    return units


def _paragraphs(lines: Sequence[str]) -> list[tuple[str, ...]]:
    paragraphs: list[tuple[str, ...]] = []
    current: list[str] = []
    for line in [*lines, ""]:
        if line.strip():
            current.append(line)
        elif current:
            paragraphs.append(tuple(current))
            current = []
    return paragraphs


def _without_template_tail(lines: Sequence[str]) -> tuple[str, ...]:
    # A question quoted together with the instruction under it ("Reply to this mail ...")
    # is the question alone.
    paragraphs = _paragraphs(lines)
    while paragraphs and is_template(paragraphs[-1]):
        paragraphs.pop()
    kept: list[str] = []
    for paragraph in paragraphs:
        kept.extend([*([""] if kept else []), *paragraph])
    return tuple(kept)
