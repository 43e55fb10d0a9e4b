"""mail-parser, less the work whose result parse_mail never reads.

MailParser.parse() ends by building ``mail`` (every header decoded, computed parts) and
``mail_partial`` (a subset of the same keys), 10-15% of a parse; parse_mail reads neither.
All that matters of them is whether building them fails, and only one step can: decoding
the encoded words ("=?charset?...") of a header other than an address header, when the
charset name is hostile (a NUL in it raises ValueError, and parse_mail then raises
ParseError). So those headers alone are decoded, with the library's own call and in the
order ``mail`` would take them, and no summary is built.

This relies on mail-parser 4.8's internals; any version without them parses the stock way.
tests/unit/test_parse_cheaper.py compares the two on every test mail and on hostile headers.
"""

from __future__ import annotations

from typing import Any

import mailparser
import mailparser.const
import mailparser.core
import mailparser.utils

# Keys of mail-parser's summary that it does not decode as headers: its own computed parts,
# the address headers (parsed once already), the names it reserves (mail-parser 4.8).
_NOT_DECODED = frozenset(
    mailparser.const.COMPUTED_PARTS
    | mailparser.const.ADDRESSES_HEADERS
    | getattr(mailparser.core, "_RESERVED_MAIL_KEYS", frozenset())
)


class _MailParser(mailparser.MailParser):  # type: ignore[misc]  # mail-parser has no types
    """MailParser that builds no summary of the message (see the module's docstring)."""

    def _make_mail(self, complete: bool = True) -> dict[str, Any]:
        index = getattr(self, "_header_index", None)
        if index is None:
            # Not the mail-parser this was written against: build the summaries after all.
            summary: dict[str, Any] = super()._make_mail(complete)
            return summary
        if complete:
            for name in mailparser.utils.get_mail_keys(self.message, complete):
                values = [] if name in _NOT_DECODED else index.get(name, ())
                if any("=?" in str(value) for value in values):
                    self._header_value(name)
        return {}


# The internals _MailParser relies on, as in mail-parser 4.8; any other version parses the
# stock way.
_LEAN = (
    hasattr(mailparser.core, "_RESERVED_MAIL_KEYS")
    and hasattr(mailparser.utils, "get_mail_keys")
    and hasattr(mailparser.MailParser, "_header_value")
    and hasattr(mailparser.MailParser, "_make_mail")
)
_PARSER: Any = _MailParser if _LEAN else mailparser.MailParser


def parse_from_bytes(raw: bytes) -> Any:
    """mailparser.parse_from_bytes(raw), less the summaries; raises what it raises."""
    return _PARSER.from_bytes(raw)
