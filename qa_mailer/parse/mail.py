"""Raw MIME bytes to ParsedMail: headers, readable text, attachments and defects.

mail-parser does the MIME walking and charset decoding; this module turns its loosely typed
result into one frozen value the later stages rely on, renders HTML-only mail as text, and
recovers bodies whose charset or structure is broken.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from typing import Any, overload

from qa_mailer.addresses import addresses_in, names_and_addresses, normalise
from qa_mailer.parse.body import joined, recover_bodies, repair_charset
from qa_mailer.parse.headers import (
    DecodedHeaders,
    date_of,
    decoded,
    first_message_id,
    message_ids,
    raw_text,
)
from qa_mailer.parse.html import html_to_text
from qa_mailer.parse.lean import parse_from_bytes

# mail-parser logs dozens of records per message, and a warning for every multipart part;
# they drown the service's own log.
logging.getLogger("mailparser").setLevel(logging.ERROR)


class ParseError(Exception):
    """The message cannot be read as mail at all."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class ParsedMail:
    """Everything later stages read from a message; never the raw bytes again."""

    message_id: str | None
    subject: str
    from_address: str
    from_name: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    delivered_to: tuple[str, ...]
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    date: datetime | None
    text_plain: str | None
    html: str | None
    content_type: str
    attachments: tuple[Attachment, ...] = ()
    defects: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def text(self) -> str:
        """The readable body: the plain part, else the HTML part rendered as text."""
        if self.text_plain and self.text_plain.strip():
            return self.text_plain
        return html_to_text(self.html) if self.html else ""

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), decoded, or None."""
        values = self._by_name.get(name.lower())
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        """Every value of a header (case-insensitive), decoded, in order."""
        return list(self._by_name.get(name.lower(), ()))

    @functools.cached_property
    def _by_name(self) -> dict[str, list[str]]:
        # The classification rules look up a dozen headers by name; a scan of all of them,
        # lower-casing each name, per lookup was most of their cost.
        found: dict[str, list[str]] = {}
        for key, value in self.headers:
            found.setdefault(key.lower(), []).append(value)
        return found

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this mail replies to: In-Reply-To first, then References newest first."""
        ordered = dict.fromkeys(self.in_reply_to)
        ordered.update(dict.fromkeys(reversed(self.references)))
        return tuple(ordered)


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse raw message bytes; raise ParseError when nothing usable can be read."""
    if not raw.strip():
        raise ParseError("the message is empty")
    try:
        parsed = parse_from_bytes(raw)
    except Exception as exc:  # mail-parser raises many kinds on hostile input
        raise ParseError(f"mail-parser could not read the message: {exc!r}") from exc
    message: Message | None = parsed.message
    if message is None or not message.keys():
        raise ParseError("the message has no headers (is it MIME mail at all?)")
    text_plain = repair_charset(message, "text/plain", joined(parsed.text_plain))
    html = repair_charset(message, "text/html", joined(parsed.text_html))
    if text_plain is None and html is None:
        text_plain, html = recover_bodies(message)
    text_plain, html = _clean(text_plain), _clean(html)
    headers = DecodedHeaders(message)
    from_name, from_address = _first_address(headers.all("From"))
    return ParsedMail(
        message_id=first_message_id(headers.first("Message-ID")),
        subject=_clean(next(iter(headers.texts("Subject")), "")).strip(),
        from_address=from_address,
        from_name=from_name,
        to=tuple(addresses_in(*headers.texts("To"))),
        cc=tuple(addresses_in(*headers.texts("Cc"))),
        reply_to=tuple(addresses_in(*headers.texts("Reply-To"))),
        delivered_to=tuple(
            addresses_in(*headers.texts("Delivered-To"), *headers.texts("X-Original-To"))
        ),
        in_reply_to=tuple(message_ids(headers.texts("In-Reply-To"))),
        references=tuple(message_ids(headers.texts("References"))),
        date=date_of(headers.first("Date")),
        text_plain=text_plain,
        html=html,
        content_type=message.get_content_type(),
        attachments=tuple(_attachments(parsed.attachments)),
        defects=tuple(sorted(str(d) for d in parsed.defects_categories)),
        headers=tuple((name, _clean(text)) for name, _, text in headers.items),
    )


@overload
def _clean(text: str) -> str: ...
@overload
def _clean(text: None) -> None: ...
def _clean(text: str | None) -> str | None:
    # NUL characters are legal in hostile mail and illegal in PostgreSQL text.
    return text.replace("\x00", "") if text else text


def _first_address(values: list[Any]) -> tuple[str, str]:
    """The first sender's name and address in the From header(s).

    The header is split into addresses as written and only then is the name decoded, so an
    encoded comma or angle bracket in a name cannot make a second address.
    """
    for name, address in names_and_addresses([raw_text(value) for value in values]):
        if "@" in address:
            return decoded(name).strip()[:200], normalise(_clean(address))[:320]
    return "", ""


def _attachments(items: Any) -> Iterable[Attachment]:
    for item in items or []:
        if not isinstance(item, dict):
            continue
        payload = item.get("payload") or ""
        # mail-parser gives base64 text for binary parts; its length over-states the size by 4/3.
        size = len(payload) * 3 // 4 if item.get("binary") else len(str(payload).encode())
        yield Attachment(
            filename=str(item.get("filename") or ""),
            content_type=str(item.get("mail_content_type") or "application/octet-stream"),
            size=size,
        )
