"""mail-parser, less the work whose result parse_mail never reads.

MailParser.parse() ends by building ``mail`` (every header decoded, computed parts) and
``mail_partial`` (a subset of the same keys), 10-15% of a parse; parse_mail reads neither.
Building them can also fail: mail-parser decodes every header's encoded words
("=?charset?...") itself, and a hostile charset name (a NUL in it) raises ValueError there,
which would make a whole question unreadable for one header parse_mail decodes its own way
(parse/headers.py). So no summary is built.

Before it walks the parts, mail-parser also parses every address header (From, To, Cc, ...),
every Date and every Received header, to offer them as attributes and to report their
defects: about a third of what is left of a parse. parse_mail reads the addresses, the date
and the headers from the message itself (parse/headers.py), and no stage reads those
header defects, so the lean parser skips that too; the MIME and charset defects it finds
while walking the parts are kept.

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

    def _reset(self) -> None:
        # The stock _reset, less the address, Date and Received header parsing: every
        # attribute it sets is set, to what it is for a message without those headers.
        self._attachments: list[Any] = []
        self._text_plain: list[str] = []
        self._text_html: list[str] = []
        self._text_not_managed: list[Any] = []
        self._defects: list[Any] = []
        self._defects_categories: set[str] = set()
        self._has_defects = False
        self._mail: dict[str, Any] = {}
        self._mail_partial: dict[str, Any] = {}
        self._header_index = self._build_header_index()
        self._address_header_defects: list[Any] = []
        self._address_headers: dict[str, Any] = {}
        self._date = None
        self._timezone = 0
        self._date_header_defects: list[Any] = []
        self._received_header_defects: list[Any] = []
        self._received: list[Any] = []


# The internals _MailParser relies on, as in mail-parser 4.8; any other version parses the
# stock way.
_LEAN = all(
    hasattr(mailparser.MailParser, name) for name in ("_make_mail", "_reset", "_build_header_index")
)
_PARSER: Any = _MailParser if _LEAN else mailparser.MailParser


def parse_from_bytes(raw: bytes) -> Any:
    """mailparser.parse_from_bytes(raw), less the summaries; raises what it raises."""
    return _PARSER.from_bytes(raw)
