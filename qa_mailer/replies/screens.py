"""Which lines of a body a header, signature or tagline rule may take, found for all at once.

The rules look at one line at a time, and most of their cost goes on lines no rule takes:
sentences. A few searches over the whole body, folded once, find the lines that could start
a quote header or be a signature or tagline; the rules then look at those alone.

Why that is enough: a quote header can start only on a line ``may_start_header`` holds for,
and a line is a signature or tagline only when ``is_signature_delimiter``,
``is_underscore_rule`` or ``is_tagline`` holds for it. The screens flag a superset of those
lines: ``HEADER_STARTS``, ``FIELD_START``, "@" and a colon at the end for headers (its "-"
and "_" also catch "--" and underscore rules after white space), ``TAGLINE_STARTS`` and
``TAGLINE_WORDS`` for taglines. tests/unit/replies/test_unquoted.py checks them against the
rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from qa_mailer.replies import vocab
from qa_mailer.replies.headers import FIELD_COLONS, FIELD_START, HEADER_STARTS
from qa_mailer.replies.signatures import TAGLINE_LEAD, TAGLINE_STARTS, TAGLINE_WORDS

# The starts of lines that may be a header, tagline or signature, in the folded body. A match
# takes no more than the line's own "\n" and what plain() strips off its start, which is more
# than may_start_header strips (" \t*") or is_underscore_rule (white space): the lead gives
# characters back until the rest matches, so every start there is is tried. One pattern for
# both screens costs half of two.
_LINE_START = re.compile(
    rf"\n{TAGLINE_LEAD}(?={HEADER_STARTS}|{vocab.alternation(TAGLINE_STARTS)})"
)
# Any line holding one of these: "@" for AddressAttribution, and the tagline words.
_WORDS = ("@", *TAGLINE_WORDS)
# A line with a colon that starts with a field label ("From:", "*Sent:*"). Many lines have a
# colon (times, links, "Question: ..."); the label alternation is tried on those alone. The
# lead takes all of " \t*", as may_start_header strips it, and gives nothing back: the white
# space FIELD_START allows after it would otherwise be tried at every split of a long lead.
# Its white space may run into the next line, which only flags a line more.
_FIELD_LINE = re.compile(rf"\n[ \t*]*+(?:{FIELD_START})")


# A line ending on a colon (may_start_header's last clause: attributions that start with a
# name, "QA Mailer пишет:").
_COLON_END = re.compile(rf"[{''.join(FIELD_COLONS)}][ \t]*$", re.MULTILINE)


def ruled_lines(bodies: str) -> list[int]:
    """Indexes, in order, of the lines a rule may take.

    ``bodies`` holds one line's body (quote markers removed) per line, joined by "\\n";
    white space left at a line's end does no harm.
    """
    # The rules strip a line's start before folding it, the screens fold first; the same
    # start is found either way, since what is stripped (white space, "*", brackets) folds
    # to itself and no other character folds to it.
    return _flagged("\n" + vocab.fold(bodies))


def _flagged(folded: str) -> list[int]:
    """Indexes of the lines a screen flags, in order; ``folded`` starts with a "\\n"."""
    positions = sorted(
        {
            *(match.start() for match in _LINE_START.finditer(folded)),
            *_word_positions(folded),
            *_field_positions(folded),
            *(match.start() for match in _COLON_END.finditer(folded)),
        }
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


def _field_positions(folded: str) -> Iterator[int]:
    for colon in FIELD_COLONS:
        at = folded.find(colon)
        while at != -1:
            start = folded.rfind("\n", 0, at)
            if _FIELD_LINE.match(folded, start):
                yield start
            end = folded.find("\n", at)
            at = -1 if end == -1 else folded.find(colon, end)


def _word_positions(folded: str) -> Iterator[int]:
    for word in _WORDS:
        at = folded.find(word)
        while at != -1:
            yield at
            # One hit is enough for a line: go on from its end.
            end = folded.find("\n", at)
            at = -1 if end == -1 else folded.find(word, end)
