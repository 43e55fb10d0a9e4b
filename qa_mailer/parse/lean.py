"""mail-parser, less the work whose result parse_mail never reads.

MailParser.parse() ends by building ``mail`` (every header decoded, computed parts) and
``mail_partial`` (a subset of the same keys), 10-15% of a parse; parse_mail reads neither.
Building them can also fail: mail-parser decodes every header's encoded words
("=?charset?...") itself, and a hostile charset name (a NUL in it) raises ValueError there,
which would make a whole question unreadable for one header parse_mail decodes its own way
(parse/headers.py). So no summary is built.

This relies on mail-parser 4.8's internals; any version without them parses the stock way.
tests/unit/test_parse_cheaper.py compares the two on every test mail and on hostile headers.
"""

from __future__ import annotations

from typing import Any

import mailparser
import mailparser.core
import mailparser.utils


class _MailParser(mailparser.MailParser):  # type: ignore[misc]  # mail-parser has no types
    """MailParser that builds no summary of the message (see the module's docstring)."""

    def _make_mail(self, complete: bool = True) -> dict[str, Any]:
        return {}


# The internals _MailParser relies on, as in mail-parser 4.8; any other version parses the
# stock way.
_LEAN = hasattr(mailparser.MailParser, "_make_mail")
_PARSER: Any = _MailParser if _LEAN else mailparser.MailParser


def parse_from_bytes(raw: bytes) -> Any:
    """mailparser.parse_from_bytes(raw), less the summaries; raises what it raises."""
    return _PARSER.from_bytes(raw)
