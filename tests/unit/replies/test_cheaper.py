"""Cheaper ways to the same result, each against the way it was first written.

The first versions are kept here, word for word, as the reference the faster code must match.
"""

from __future__ import annotations

import re
import sys

import pytest

from qa_mailer.replies.lines import MAX_CHARS, normalise
from qa_mailer.replies.trim import join

_ALL = "".join(chr(code) for code in range(sys.maxunicode + 1) if not 0xD800 <= code < 0xE000)

# normalise() as first written: str.translate over every character.
_CONTROLS = "".join(chr(c) for c in range(32) if chr(c) not in "\t\n")
_INVISIBLE = (
    "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u1427"
)
_TRANSLATE = str.maketrans(
    {
        **dict.fromkeys(_INVISIBLE + _CONTROLS + "\x7f"),
        **dict.fromkeys("\xa0\u2007\u202f\u3000", " "),
    }
)


def _normalise_first(text: str) -> str:
    text = text[:MAX_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    return text.translate(_TRANSLATE)


@pytest.mark.parametrize(
    "text",
    [
        _ALL[: MAX_CHARS // 2],
        _ALL[MAX_CHARS // 2 :],
        _ALL * 2,
        "plain ASCII\twith a tab\r\nand CRLF",
        "Kako klaster pomaže?\nКак дела?\n",
        "Gmail's dot\u1427 alone",
        "a\xa0b\u2007c\u202fd\u3000e",
        "private use \ue000 and a line separator \u2028",
        "\x00\x01\x7f" * 100,
        "",
    ],
)
def test_normalise_changes_what_translate_changed(text: str) -> None:
    # Compared as a bool: pytest would print a million characters on a difference.
    same = normalise(text) == _normalise_first(text)
    assert same


def test_join_collapses_blank_runs_as_before() -> None:
    lines = ["a", "", "", "", "b  ", "", "c", "", "", "", "", "", "\t", "d", "", "", "e", ""]
    text = "\n".join(line.rstrip() for line in lines)
    assert join(lines) == re.sub(r"\n{3,}", "\n\n", text).strip("\n")
