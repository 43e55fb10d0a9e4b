"""A reply body as lines, each with its quote depth and what the classifier made of it.

Normalising happens once here so that no rule has to care about line endings, invisible
characters, hostile sizes or quote-marker spelling.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

# Hard limits keep every later step linear: a reply longer than this is quoted history or junk.
MAX_CHARS = 1_000_000
MAX_LINES = 20_000
# Rules never look further into a line than this, so no pattern can be fed a megabyte line.
MAX_LINE = 1_000

# A line made of this alone stands for a quote header found in HTML structure (html_quotes.py).
HEADER_MARK = "\ue000"

# Characters that carry no text: zero-width spaces and joiners, direction marks (Outlook puts
# them around Russian dates), soft hyphens, BOMs, and the "ᐧ" Gmail adds as a read tracker.
_INVISIBLE = (
    "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u1427"
)
_SPACES = "\xa0\u2007\u202f\u3000"
_CONTROLS = "".join(chr(c) for c in range(32) if chr(c) not in "\t\n")
# str.translate looks every character up in a dict, ~75 ns each once the text is not ASCII;
# two regex passes find the few characters there are to change several times faster.
_DROPPED = re.compile("[" + re.escape(_INVISIBLE + _CONTROLS + "\x7f") + "]")
_SPACED = re.compile("[" + re.escape(_SPACES) + "]")
_CHANGED = re.compile("[" + re.escape(_INVISIBLE + _CONTROLS + "\x7f" + _SPACES) + "]")
# The few of them that str.isprintable() passes (the Gmail dot).
_PRINTABLE_CHANGED = tuple(c for c in _INVISIBLE + _SPACES if c.isprintable())

# "> ", ">>", "> > >", with up to three spaces before; the depth is the number of ">".
_MARKERS = re.compile(r"[ \t]{0,3}(?:>[ \t]?)+")
# Supercite-style initials before the marker ("JS> ", "C>"), as Usenet readers quote.
_INITIALS = re.compile(r"[ \t]{0,2}[A-Z]{1,3}>(?=[ \t>]|$)[ \t]?")


# A quoted line at least this long was wrapped by the client (most wrap at 72 to 78).
_WRAPPED_WIDTH = 60
# The rest of a wrapped line is shorter than a line.
_MAX_WRAPPED_TAIL = 78
_SENTENCE_ENDS = (".", "?", "!", ":", ";", "…")
_MAX_QUESTION_TAIL = 40


class Kind(enum.Enum):
    """What a line is, as far as trimming cares."""

    BLANK = "blank"
    TEXT = "text"  # written by the replier
    QUOTE = "quote"  # quoted with markers
    HEADER = "header"  # introduces quoted mail: "On ... wrote:", "From: ... Sent: ..."
    SIGNATURE = "signature"  # "-- " and what follows it
    TAGLINE = "tagline"  # "Sent from my iPhone" and what follows it
    HISTORY = "history"  # quoted mail without markers, after a header

    # Members are singletons compared by identity; Enum's own __hash__ runs in Python and
    # shows up in profiles, since every line's kind is looked up in sets many times.
    __hash__ = object.__hash__


# Kinds looked up together in the loops over lines: built once here, not at every test (a
# set display of enum members is built anew each time it is evaluated).
TEXT_OR_BLANK = frozenset({Kind.TEXT, Kind.BLANK})
QUOTE_OR_BLANK = frozenset({Kind.QUOTE, Kind.BLANK})


@dataclass(slots=True)
class Line:
    """One line of the reply."""

    raw: str  # the line as it was, trailing white space removed
    depth: int  # number of quote markers
    body: str  # the line without its quote markers
    kind: Kind = Kind.TEXT
    # For HEADER and QUOTE lines: the line is (part of) a quote header, at its own depth.
    header: bool = False
    # True when the line has no visible text (quote markers alone count as blank).
    blank: bool = field(init=False)

    def __post_init__(self) -> None:
        self.blank = not self.body.strip()


def normalise(text: str) -> str:
    """Return ``text`` with one kind of line ending, no invisible characters, within limits."""
    text = text[:MAX_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    if _unchanged(text):
        return text
    return _SPACED.sub(" ", _DROPPED.sub("", text))


def _unchanged(text: str) -> bool:
    # Most bodies hold none of the characters normalise() changes. Nearly all of them are
    # unprintable, as are only tabs and line ends besides in most text: isprintable() tells
    # it at a third of the cost of the search, which settles the rest.
    printable = text.replace("\n", " ").replace("\t", " ").isprintable()
    if printable and not any(c in text for c in _PRINTABLE_CHANGED):
        return True
    return _CHANGED.search(text) is None


def split_lines(text: str) -> list[Line]:
    """Split a normalised body into lines with their quote depth."""
    lines = [_parse(raw.rstrip()) for raw in text.split("\n")[:MAX_LINES]]
    _mend_broken_links(lines)
    for line in lines:
        if line.blank:
            line.kind = Kind.QUOTE if line.depth else Kind.BLANK
        elif line.depth:
            line.kind = Kind.QUOTE
    return lines


def quote_prefix(raw: str) -> tuple[int, int]:
    """Return (depth, length of the marker prefix) of a raw line."""
    if ">" not in raw[:6]:
        # Both patterns put the first ">" within six characters (3 spaces, or 2 spaces and 3
        # initials); most lines have none there.
        return 0, 0
    head = raw[:MAX_LINE]
    depth = 0
    end = 0
    initials = _INITIALS.match(head)
    if initials:
        depth, end = 1, initials.end()
    markers = _MARKERS.match(head, end)
    if markers and markers.end() > end:
        depth += markers.group().count(">")
        end = markers.end()
    return depth, end


def _parse(raw: str) -> Line:
    depth, end = quote_prefix(raw)
    # ">>> look here <<<": arrows drawn around a link, not a quotation.
    if depth >= 2 and raw.endswith("<<"):
        depth, end = 0, 0
    return Line(raw=raw, depth=depth, body=raw[end:])


def _mend_broken_links(lines: list[Line]) -> None:
    # Clients wrap long links inside a quote without repeating the marker, which leaves a lone
    # unquoted fragment ("_nonce=3dd518)" or " (http://x/c/YzOT) >") between quoted lines.
    # Such a fragment belongs to the quote; a real answer line has words, not just a link.
    for i in range(1, len(lines)):
        line, before = lines[i], lines[i - 1]
        if line.depth or not before.depth or line.blank:
            continue
        after = lines[i + 1] if i + 1 < len(lines) else None
        if after is not None and after.depth:
            mended = _looks_like_link_fragment(line.raw, before.raw) or _looks_like_wrapped_tail(
                line.raw, before.body
            )
        else:
            # The last line of a quote: only a question's tail, the rest of its sentence.
            mended = (after is None or after.blank) and _looks_like_question_tail(
                line.raw, before.body
            )
        if mended:
            line.depth = before.depth
            line.body = line.raw.strip()


def _looks_like_wrapped_tail(raw: str, previous: str) -> bool:
    # The tail of a long quoted line that the client wrapped without repeating ">": the
    # line above it fills the width and stops mid-sentence. An answer typed between two
    # quoted lines follows a finished one (a question ends on "?").
    previous = previous.rstrip()
    return (
        len(previous) >= _WRAPPED_WIDTH
        and not previous.endswith(_SENTENCE_ENDS)
        and len(raw.strip()) <= _MAX_WRAPPED_TAIL
    )


def _looks_like_question_tail(raw: str, previous: str) -> bool:
    # Under the last quoted line an answer may follow without a blank line, so the tail
    # must read as the rest of the quoted sentence: lower case on, and a question mark.
    tail = raw.strip()
    return (
        _looks_like_wrapped_tail(raw, previous)
        and tail[:1].islower()
        and tail.endswith("?")
        and len(tail) <= _MAX_QUESTION_TAIL
    )


def _looks_like_link_fragment(raw: str, previous: str) -> bool:
    words = raw.strip().rstrip(">").split()
    if not words or len(words) > 2:
        return False
    if all(word.strip("()<>").startswith(("http://", "https://")) for word in words):
        return True
    # The rest of a link cut at the end of the previous line: one word, no spaces.
    tail = previous.rstrip().rsplit(" ", 1)[-1]
    return len(words) == 1 and tail.lstrip("(<").startswith(("http://", "https://"))
