"""Turn classified lines into the trimmed reply and the replier's own text.

``reply`` follows Discourse's behaviour: quoted blocks that sit between lines the replier wrote
stay (they give the answers their context); headers, signatures, taglines, unquoted history and
quoted blocks at the end go. A quoted block at the top that a header introduces is dropped too
when all the new text comes after it (a bottom-posted reply), because then it is only history.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qa_mailer.replies.lines import QUOTE_OR_BLANK, TEXT_OR_BLANK, Kind, Line

# Spelt with a literal start, which the regex engine looks for at C speed; "\n{3,}" makes it
# try the repeat at every character, ten times slower.
_BLANK_RUNS = re.compile(r"\n\n\n+")
_WRITTEN_OR_BLANK = frozenset({Kind.TEXT, Kind.BLANK, Kind.SIGNATURE, Kind.TAGLINE})


@dataclass(frozen=True)
class QuoteBlock:
    """A run of quoted lines (blank lines inside included), by line index."""

    start: int
    end: int  # inclusive
    introduced: bool  # a quote header stands right above it or opens it


def quote_blocks(lines: Sequence[Line]) -> list[QuoteBlock]:
    """Find the runs of quoted lines that no line of the replier's interrupts."""
    blocks: list[QuoteBlock] = []
    index = 0
    while index < len(lines):
        if lines[index].kind is not Kind.QUOTE:
            index += 1
            continue
        start = index
        end = index
        while index < len(lines) and lines[index].kind in QUOTE_OR_BLANK:
            if lines[index].kind is Kind.QUOTE:
                end = index
            index += 1
        blocks.append(QuoteBlock(start, end, _introduced(lines, start, end)))
    return blocks


def _introduced(lines: Sequence[Line], start: int, end: int) -> bool:
    first = next((line for line in lines[start : end + 1] if not line.blank), None)
    if first is not None and first.header:
        return True
    for line in reversed(lines[:start]):
        if line.kind is not Kind.BLANK:
            return line.kind is Kind.HEADER
    return False


def kept_blocks(lines: Sequence[Line], blocks: Sequence[QuoteBlock]) -> list[QuoteBlock]:
    """The quoted blocks that belong in the trimmed reply."""
    written = [index for index, line in enumerate(lines) if line.kind is Kind.TEXT]
    if not written:
        # Nothing new at all: keep a bare quote, but not quoted history with its header.
        return [block for block in blocks if not block.introduced]
    first, last = written[0], written[-1]
    between = [block for block in blocks if first < block.start and block.end < last]
    # A header-introduced block above all the new text is the mail replied to, bottom-posted;
    # with answers between later quotes it is the first question's context and stays.
    return [
        block
        for block in blocks
        if block in between or (block.end < first and not (block.introduced and not between))
    ]


def reply_text(lines: Sequence[Line]) -> str:
    """The trimmed reply: new text plus the quoted blocks that sit between it."""
    keep: set[int] = set()
    for block in kept_blocks(lines, quote_blocks(lines)):
        keep.update(_shown(lines, block))
    return join(
        line.raw if line.kind is not Kind.BLANK else ""
        for index, line in enumerate(lines)
        if line.kind in TEXT_OR_BLANK or index in keep
    )


def _shown(lines: Sequence[Line], block: QuoteBlock) -> Iterable[int]:
    # Quoted headers go, and so do the empty quoted lines that only set them apart.
    after_header = False
    for index in range(block.start, block.end + 1):
        line = lines[index]
        if line.header:
            after_header = True
            continue
        if line.kind is not Kind.QUOTE or (after_header and line.blank):
            continue
        after_header = False
        yield index


def new_text(lines: Sequence[Line]) -> str:
    """Only what the replier wrote: no quoted line, header, signature or tagline."""
    return join(line.raw for line in lines if line.kind is Kind.TEXT or line.kind is Kind.BLANK)


def new_text_with_signature(lines: Sequence[Line]) -> str:
    """What the replier wrote with their signature and taglines: no quoted line or header."""
    return join(line.raw for line in lines if line.kind in _WRITTEN_OR_BLANK)


def join(lines: Iterable[str]) -> str:
    """Join lines, with at most one blank line in a row and none at either end."""
    text = "\n".join(map(str.rstrip, lines))
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")
