"""Give every line of a reply its kind: the replier's text, quote, header, signature, history.

The steps run in a fixed order, each a small function over the whole list:

1. split a quote header glued onto the end of a reply line ("ok On <date> X wrote:");
2. mark quote headers (``headers.HEADER_RULES``), with the rule line or "Begin forwarded
   message:" just above a header counted as part of it;
3. mark signatures and taglines, each running to the next quote or header;
4. mark unquoted history: what follows a header that introduces no ``>`` quote, when the
   replier wrote something above that header.
"""

from __future__ import annotations

from collections.abc import Container, Iterator

from qa_mailer.replies.headers import (
    field_category,
    find_glued_attribution,
    is_block_lead,
    is_forward_intro,
    is_rule_line,
    match_header,
)
from qa_mailer.replies.lines import TEXT_OR_BLANK, Kind, Line
from qa_mailer.replies.screens import ruled_lines
from qa_mailer.replies.signatures import (
    is_list_footer,
    is_short_underscore_rule,
    is_signature_delimiter,
    is_tagline,
    is_underscore_rule,
)

# A signature under underscores is short; more than this is someone's text.
_MAX_SIGNATURE_LINES = 4
_MAX_SIGNATURE_WIDTH = 100

_QUOTE_OR_HEADER = frozenset({Kind.QUOTE, Kind.HEADER})
_HEADER_OR_BLANK = frozenset({Kind.HEADER, Kind.BLANK})
# What the replier wrote without quoting it.
_WRITTEN = frozenset({Kind.TEXT, Kind.SIGNATURE, Kind.TAGLINE})


def classify(lines: list[Line]) -> list[Line]:
    """Return the lines with their kinds set (the list may gain lines where headers are glued)."""
    lines = _split_glued_headers(lines)
    ruled = _ruled(lines)
    _mark_headers(lines, ruled)
    _extend_headers_upwards(lines)
    _mark_signatures(lines, ruled)
    _mark_history(lines)
    return lines


def _ruled(lines: list[Line]) -> Container[int]:
    # The lines a header or tagline rule may take (screens.py); the rules need not look at
    # the others, which are most of them.
    return frozenset(ruled_lines("\n".join(line.body for line in lines)))


def _split_glued_headers(lines: list[Line]) -> list[Line]:
    out: list[Line] = []
    for index, line in enumerate(lines):
        offset = None
        if line.kind is Kind.TEXT and _next_is_quote(lines, index):
            offset = find_glued_attribution(line.raw)
        if offset is None:
            out.append(line)
            continue
        reply, header = line.raw[:offset].rstrip(" -"), line.raw[offset:]
        out.append(Line(raw=reply, depth=0, body=reply))
        out.append(Line(raw=header, depth=0, body=header))
    return out


def _next_is_quote(lines: list[Line], index: int) -> bool:
    for line in lines[index + 1 : index + 4]:
        if not line.blank:
            return line.depth > 0
    return False


def _mark_headers(lines: list[Line], ruled: Container[int]) -> None:
    index = 0
    while index < len(lines):
        found = match_header(lines, index) if index in ruled else None
        if found is None or not (found.certain or _quote_follows(lines, found.end)):
            index += 1
            continue
        outer = lines[index].depth
        for line in lines[index : found.end + 1]:
            line.header = True
            line.kind = Kind.HEADER if outer == 0 else Kind.QUOTE
        index = found.end + 1


def _quote_follows(lines: list[Line], end: int) -> bool:
    depth = lines[end].depth
    for line in lines[end + 1 : end + 4]:
        if not line.blank:
            return line.depth > depth
    return False


def _extend_headers_upwards(lines: list[Line]) -> None:
    for start in _header_starts(lines):
        index = start - 1
        if index >= 0 and _leads_field_block(lines, index, start):
            lines[index].kind, lines[index].header = Kind.HEADER, True
            index -= 1
        blanks = 0
        while index >= 0 and blanks <= 1:
            line = lines[index]
            if line.kind is Kind.BLANK:
                blanks += 1
            elif line.kind is Kind.TEXT and (
                is_rule_line(line.body) or is_forward_intro(line.body)
            ):
                line.kind, line.header, blanks = Kind.HEADER, True, 0
            else:
                break
            index -= 1


def _leads_field_block(lines: list[Line], index: int, start: int) -> bool:
    line = lines[index]
    return (
        line.kind is Kind.TEXT
        and field_category(lines[start].body) is not None
        and is_block_lead(line.body)
    )


def _header_starts(lines: list[Line]) -> Iterator[int]:
    for index, line in enumerate(lines):
        if line.kind is Kind.HEADER and (index == 0 or lines[index - 1].kind is not Kind.HEADER):
            yield index


def _mark_signatures(lines: list[Line], ruled: Container[int]) -> None:
    index = 0
    while index < len(lines):
        line = lines[index]
        kind = None
        if line.kind is Kind.TEXT:
            if is_signature_delimiter(line.body):
                kind = Kind.SIGNATURE
            elif index in ruled and is_tagline(line.body):
                kind = Kind.TAGLINE
            elif _opens_footer(lines, index):
                kind = Kind.SIGNATURE
        if kind is None:
            index += 1
            continue
        index = _mark_until_quote(lines, index, kind)


def _mark_until_quote(lines: list[Line], start: int, kind: Kind) -> int:
    index = start
    while index < len(lines) and lines[index].kind in TEXT_OR_BLANK:
        if lines[index].kind is Kind.TEXT or index == start:
            lines[index].kind = kind
        index += 1
    return index


def _opens_footer(lines: list[Line], index: int) -> bool:
    body = lines[index].body
    if is_underscore_rule(body):
        return _short_final_tail(lines, index)
    return is_short_underscore_rule(body) and _list_footer(lines, index)


def _list_footer(lines: list[Line], start: int) -> bool:
    # "__" is a Markdown rule too: it opens a footer only above a short final tail that
    # names a list.
    if not _short_final_tail(lines, start):
        return False
    tail = []
    for line in lines[start + 1 :]:
        if line.kind is not Kind.TEXT and line.kind is not Kind.BLANK:
            break
        tail.append(line.body)
    return is_list_footer(tail)


def _short_final_tail(lines: list[Line], start: int) -> bool:
    # Underscores are also Outlook's divider and a Markdown rule: they open a signature only
    # when a few short lines follow and nothing the replier wrote comes after them.
    tail = 0
    for line in lines[start + 1 :]:
        if line.kind is Kind.BLANK:
            continue
        if line.kind is not Kind.TEXT:
            break
        tail += 1
        if tail > _MAX_SIGNATURE_LINES or len(line.body) > _MAX_SIGNATURE_WIDTH:
            return False
    seen_quote = False
    for line in lines[start + 1 :]:
        if line.kind in _QUOTE_OR_HEADER:
            seen_quote = True
        elif seen_quote and line.kind is Kind.TEXT:
            return False
    return tail > 0


def _mark_history(lines: list[Line]) -> None:
    wrote_before = False
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.kind is not Kind.HEADER:
            if line.depth == 0 and line.kind in _WRITTEN:
                wrote_before = True
            index += 1
            continue
        end = index
        while end + 1 < len(lines) and lines[end + 1].kind in _HEADER_OR_BLANK:
            end += 1
        following = lines[end + 1] if end + 1 < len(lines) else None
        # A header over unquoted text starts the quoted mail itself (Outlook, forwards); at
        # the very top of a reply it is only a leftover, and what follows is the reply.
        if following is not None and following.kind is not Kind.QUOTE and wrote_before:
            for rest in lines[end + 1 :]:
                rest.kind = Kind.HISTORY
            return
        index = end + 1
