"""The few lines a quote header rule looks at from one position, and the rule protocol."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, overload

from qa_mailer.replies import vocab
from qa_mailer.replies.lines import MAX_LINE, Line

# An attribution runs over no more lines than this (Polymail: name, "<", "mailto:...",
# "> wrote:"), blank lines between them counted in the span.
_MAX_WINDOW_LINES = 4
_MAX_WINDOW_SPAN = 6


@dataclass(frozen=True)
class Window:
    """Up to a few non-blank lines from a position, at one quote depth, markers removed."""

    indexes: tuple[int, ...]
    texts: Sequence[str]  # folded (vocab.fold)


def window(lines: Sequence[Line], start: int, depth: int) -> Window:
    """Collect the lines an attribution starting at ``start`` could span."""
    indexes: list[int] = []
    for index in range(start, min(len(lines), start + _MAX_WINDOW_SPAN)):
        line = lines[index]
        if line.depth < depth:
            break
        if line.blank:
            continue
        indexes.append(index)
        if len(indexes) == _MAX_WINDOW_LINES:
            break
    return Window(tuple(indexes), _WindowTexts(lines, tuple(indexes), depth))


class _WindowTexts(Sequence[str]):
    """The folded texts of a window's lines, each made when a rule first reads it.

    Most windows are refused on their first line; folding the others too was most of the
    cost of looking for a header.
    """

    def __init__(self, lines: Sequence[Line], indexes: tuple[int, ...], depth: int) -> None:
        self._lines = lines
        self._indexes = indexes
        self._depth = depth
        self._made: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._indexes)

    @overload
    def __getitem__(self, position: int) -> str: ...
    @overload
    def __getitem__(self, position: slice) -> Sequence[str]: ...
    def __getitem__(self, position: int | slice) -> str | Sequence[str]:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        position = range(len(self))[position]
        if position not in self._made:
            self._made[position] = self._text(self._lines[self._indexes[position]])
        return self._made[position]

    def _text(self, line: Line) -> str:
        # Polymail's "> wrote:" sits one level deeper than the rest of its attribution, so
        # only the markers of the header's own depth are taken off.
        raw = line.raw[:MAX_LINE]
        text = raw if self._depth == 0 else markers(self._depth).sub("", raw)
        return vocab.fold(text.strip())


@functools.cache
def markers(depth: int) -> re.Pattern[str]:
    """The quote markers of ``depth`` levels at the start of a raw line."""
    return re.compile(rf"^(?:[ \t]{{0,3}}(?:[A-Z]{{1,3}})?>[ \t]?){{{depth}}}")


class HeaderRule(Protocol):
    """A way to recognise a quote header starting at a given line."""

    name: str
    description: str

    def check(self, lines: Sequence[Line], start: int, found: Window) -> int | None:
        """Return the index of the header's last line, or None if there is no header here."""
        ...
