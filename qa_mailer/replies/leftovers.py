"""The last look at an answer before it goes to a participant: does it still carry mail history?

Trimming weighs every line against the reply around it and keeps a line when in doubt, since
cutting the expert's words loses them. Publishing weighs the other way: a quote header, a
signature or a phone tagline inside an answer tells a participant about mail they never saw.
So each answer is read once more, line by line and without the context that made trimming
careful, and an answer with such a line is held for confirmation rather than sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from qa_mailer.replies import vocab
from qa_mailer.replies.attribution_text import closes_attribution, when
from qa_mailer.replies.headers import field_category, match_header
from qa_mailer.replies.lines import MAX_LINE, Line, normalise, split_lines
from qa_mailer.replies.signatures import is_signature_delimiter, is_tagline

log = logging.getLogger("qa_mailer.replies")

# Longer lines are paragraphs, whatever they end with.
_MAX_HEADER_LINE = 250


@dataclass(frozen=True)
class Leftover:
    """A line of an answer that looks like mail history, and the rule that says so."""

    rule: str
    line: str

    def reason(self) -> str:
        """Why the answer is held, for the expert's receipt and the organisers' list."""
        return f"the answer still holds a line that looks like {self.rule}: {self.line.strip()!r}"


class LeftoverRule(Protocol):
    """A kind of line that has no place in a published answer."""

    name: str
    description: str

    def check(self, lines: Sequence[Line], index: int) -> bool:
        """True when ``lines[index]`` is such a line."""
        ...


class QuoteHeader:
    name = "a quote header"
    description = "any header rule matches, sure of it or not ('Maria wrote:', 'From: ...')"

    def check(self, lines: Sequence[Line], index: int) -> bool:
        return match_header(lines, index) is not None


class AttributionEnding:
    name = "a quote header"
    description = "a short line ending the way attributions end: a verb or an address, a colon"

    def check(self, lines: Sequence[Line], index: int) -> bool:
        text = vocab.fold(lines[index].body.strip())
        return len(text) <= _MAX_HEADER_LINE and closes_attribution(text)


class DatedFieldLine:
    name = "a quote header"
    description = "'From: Ana <ana@x.org>' or 'Sent: 3 March 2025 10:15' alone"

    def check(self, lines: Sequence[Line], index: int) -> bool:
        body = lines[index].body[:MAX_LINE]
        category = field_category(body)
        return category in {"from", "sent", "date"} and ("@" in body or when(body))


class SignatureDelimiter:
    name = "a signature"
    description = "the '-- ' line that opens a signature"

    def check(self, lines: Sequence[Line], index: int) -> bool:
        return is_signature_delimiter(lines[index].body)


class Tagline:
    name = "a phone or app tagline"
    description = "'Sent from my iPhone' and the like"

    def check(self, lines: Sequence[Line], index: int) -> bool:
        return is_tagline(lines[index].body)


LEFTOVER_RULES: tuple[LeftoverRule, ...] = (
    SignatureDelimiter(),
    Tagline(),
    QuoteHeader(),
    AttributionEnding(),
    DatedFieldLine(),
)


def find_leftover(answer: str) -> Leftover | None:
    """The first line of ``answer`` that looks like mail history, or None when it is clean."""
    lines = split_lines(normalise(answer))
    for index, line in enumerate(lines):
        if line.blank:
            continue
        for rule in LEFTOVER_RULES:
            if rule.check(lines, index):
                return Leftover(rule.name, line.raw[:_MAX_HEADER_LINE])
    return None


def leftover_reason(answer: str) -> str | None:
    """Why ``answer`` must not be sent as it is, or None. Never raises."""
    try:
        found = find_leftover(answer)
    except Exception:
        # A bug here must not hold every answer; the parse itself was already done.
        log.exception("could not check an answer for leftover mail history")
        return None
    return found.reason() if found else None
