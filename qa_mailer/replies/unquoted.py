"""The trimmed reply of a body that quotes nothing, found without classifying every line.

Most participants' questions quote nothing: no ``>`` line and no quote header, only text and
perhaps a signature or a phone tagline at the end. Classifying every line (``classify``) costs
far more than reading the body; here a few searches over the whole body show that no line is
quoted, and only the lines that could be a quote header, signature or tagline are looked at,
with the real rules. A body this cannot settle goes the long way, so the result is the same.

Why the screens are enough: ``classify`` marks a line as a quote header only when
``may_start_header`` holds for it, and as a signature or tagline only when
``is_signature_delimiter``, ``is_underscore_rule`` or ``is_tagline`` does. The screens flag a
superset of those lines: ``HEADER_STARTS`` and ``HEADER_CHARACTERS`` for headers (its "-" and
"_" also catch "--" and underscore rules after white space), ``TAGLINE_STARTS`` and
``TAGLINE_WORDS`` for taglines. A line none of them flags is the replier's own text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import overload

from qa_mailer.replies import vocab
from qa_mailer.replies.headers import (
    HEADER_CHARACTERS,
    HEADER_STARTS,
    match_header,
    may_start_header,
)
from qa_mailer.replies.lines import MAX_LINES, Kind, Line
from qa_mailer.replies.signatures import (
    TAGLINE_LEAD,
    TAGLINE_STARTS,
    TAGLINE_WORDS,
    is_signature_delimiter,
    is_tagline,
    is_underscore_rule,
)
from qa_mailer.replies.trim import join

# Every quote prefix (lines.quote_prefix) is a match of this at the start of a line; searched
# in the body as written, since its initials are capitals.
_QUOTE_START = re.compile(r"\n[ \t]{0,3}[A-Z]{0,3}>")
# The starts of lines that may be a header, tagline or signature, in the folded body. A match
# takes no more than the line's own "\n" and what may_start_header or plain() strips.
# A match takes no more than the line's own "\n" and what plain() strips off its start, which
# is more than may_start_header strips (" \t*") or is_underscore_rule (white space): the lead
# gives characters back until the rest matches, so every start there is is tried. One
# pattern for both screens costs half of two.
_LINE_START = re.compile(
    rf"\n{TAGLINE_LEAD}(?={HEADER_STARTS}|{vocab.alternation(TAGLINE_STARTS)})"
)
_WORDS = (*HEADER_CHARACTERS, *TAGLINE_WORDS)
# fold() drops this character, which may stand between the " \t*" that may_start_header
# strips and the text after it; a body with it goes the long way.
_COMBINING_DOT = "\u0307"


def unquoted_reply(text: str) -> str | None:
    """The trimmed reply of a normalised body in which no line is quoted or a quote header.

    That is the body up to a signature or phone tagline, as ``trim.reply_text`` would join
    it. None when a line may be quoted or a header: the caller then classifies every line.
    """
    if _COMBINING_DOT in text or text.count("\n") >= MAX_LINES:
        return None
    if _QUOTE_START.search("\n" + text):
        return None
    lines = text.split("\n")
    cut = len(lines)
    for index in _flagged("\n" + vocab.fold(text)):
        raw = lines[index].rstrip()
        if not raw.strip():
            continue
        if may_start_header(raw) and _is_header(lines, index):
            return None
        if is_underscore_rule(raw):
            # Underscores open a signature or not by what follows them: classify() decides.
            return None
        if index < cut and (is_signature_delimiter(raw) or is_tagline(raw)):
            # The first signature or tagline runs to the end of a body without quotes.
            cut = index
    return join(lines[:cut])


def _is_header(lines: list[str], index: int) -> bool:
    """True when classify() would mark a quote header at ``lines[index]`` of this body."""
    found = match_header(_UnquotedLines(lines), index)
    # A header that is not certain counts only above a quote (classify._mark_headers).
    return found is not None and found.certain


class _UnquotedLines(Sequence[Line]):
    """The body's lines as split_lines() makes unquoted ones, each made when a rule reads it."""

    def __init__(self, lines: list[str]) -> None:
        self._raw = lines
        self._made: dict[int, Line] = {}

    def __len__(self) -> int:
        return len(self._raw)

    @overload
    def __getitem__(self, index: int) -> Line: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Line]: ...
    def __getitem__(self, index: int | slice) -> Line | Sequence[Line]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]
        if index not in self._made:
            raw = self._raw[index].rstrip()
            line = Line(raw=raw, depth=0, body=raw)
            line.kind = Kind.BLANK if line.blank else Kind.TEXT
            self._made[index] = line
        return self._made[index]


def _flagged(folded: str) -> list[int]:
    """Indexes of the lines a screen flags, in order; ``folded`` starts with a "\\n"."""
    positions = sorted(
        {*(match.start() for match in _LINE_START.finditer(folded)), *_word_positions(folded)}
    )
    flagged: list[int] = []
    # A position is on the line opened by the last "\n" at or before it.
    newlines = 0
    counted = 0
    for position in positions:
        newlines += folded.count("\n", counted, position + 1)
        counted = position + 1
        if not flagged or flagged[-1] != newlines - 1:
            flagged.append(newlines - 1)
    return flagged


def _word_positions(folded: str) -> Iterator[int]:
    for word in _WORDS:
        at = folded.find(word)
        while at != -1:
            yield at
            # One hit is enough for a line: go on from its end.
            end = folded.find("\n", at)
            at = -1 if end == -1 else folded.find(word, end)
