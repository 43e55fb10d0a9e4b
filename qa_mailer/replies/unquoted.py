"""The trimmed reply of a body that quotes nothing, found without classifying every line.

Most participants' questions quote nothing: no ``>`` line and no quote header, only text and
perhaps a signature or a phone tagline at the end. Classifying every line (``classify``) costs
far more than reading the body; here one search over the whole body shows that no line is
quoted, and only the lines the screens flag (``screens.py``) are looked at, with the real
rules. A body this cannot settle goes the long way, so the result is the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple, overload

from qa_mailer.replies.headers import match_header, may_start_header
from qa_mailer.replies.lines import MAX_LINES, Kind, Line
from qa_mailer.replies.screens import ruled_lines
from qa_mailer.replies.signatures import (
    is_short_underscore_rule,
    is_signature_delimiter,
    is_tagline,
    is_underscore_rule,
)
from qa_mailer.replies.trim import join

# Every quote prefix (lines.quote_prefix) is a match of this at the start of a line; searched
# in the body as written, since its initials are capitals.
_QUOTE_START = re.compile(r"\n[ \t]{0,3}[A-Z]{0,3}>")


class Unquoted(NamedTuple):
    """A body that quotes nothing, trimmed."""

    # The body up to its first signature or phone tagline, as ``trim.reply_text`` joins it.
    reply: str
    # The whole body, signature and taglines included, as ``trim.new_text_with_signature``
    # joins it: nothing in it is quoted, so all of it is the replier's.
    with_signature: str


def unquoted_reply(text: str) -> Unquoted | None:
    """The trimmed reply of a normalised body in which no line is quoted or a quote header.

    None when a line may be quoted or a header: the caller then classifies every line.
    """
    if text.count("\n") >= MAX_LINES or (">" in text and _QUOTE_START.search("\n" + text)):
        return None
    lines = text.split("\n")
    cut = len(lines)
    for index in ruled_lines(text):
        raw = lines[index].rstrip()
        if not raw.strip():
            continue
        if may_start_header(raw) and _is_header(lines, index):
            return None
        if is_underscore_rule(raw) or is_short_underscore_rule(raw):
            # Underscores open a signature or not by what follows them: classify() decides.
            return None
        if index < cut and (is_signature_delimiter(raw) or is_tagline(raw)):
            # The first signature or tagline runs to the end of a body without quotes.
            cut = index
    whole = join(lines)
    return Unquoted(join(lines[:cut]) if cut < len(lines) else whole, whole)


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
