"""Cheaper ways to the same result, each against the way it was first written.

The first versions are kept here, word for word, as the reference the faster code must match.
"""

from __future__ import annotations

import re
import sys

from qa_mailer.replies.trim import join

_ALL = "".join(chr(code) for code in range(sys.maxunicode + 1) if not 0xD800 <= code < 0xE000)


def test_join_collapses_blank_runs_as_before() -> None:
    lines = ["a", "", "", "", "b  ", "", "c", "", "", "", "", "", "\t", "d", "", "", "e", ""]
    text = "\n".join(line.rstrip() for line in lines)
    assert join(lines) == re.sub(r"\n{3,}", "\n\n", text).strip("\n")
