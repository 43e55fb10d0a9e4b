"""Header values decoded to text whatever the sender did: RFC 2047 words, bad charsets, junk."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from email.header import decode_header
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

from qa_mailer.parse.charsets import decode_guessing, decode_with

_MESSAGE_ID = re.compile(r"<[^<>\s]{1,500}>")


def decoded(value: Any) -> str:
    """A header value as text, RFC 2047 words decoded, never raising."""
    if value is None:
        return ""
    text = str(value)
    if "=?" not in text:
        # What decode_header gives for a text with no encoded word (it looks for "=?" first).
        return text
    try:
        chunks = decode_header(text)
    except (LookupError, UnicodeError, ValueError, TypeError):
        return str(value)
    if all(isinstance(chunk, str) for chunk, _ in chunks):
        return "".join(str(chunk) for chunk, _ in chunks)
    words: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            text = chunk
        elif charset is None:
            text = decode_guessing(chunk)
        else:
            text = decode_with(chunk, charset)
        # decode_header drops the white space between an encoded word and plain text.
        if words and charset is None and not text.startswith(" "):
            text = " " + text
        words.append(text)
    return "".join(words)


class DecodedHeaders:
    """Every header of a message, fetched and decoded once, found by name in any case.

    What ``message.get`` and ``message.get_all`` give, without a scan of all the headers and a
    decoding per call: a parse reads a dozen of them, several twice.
    """

    def __init__(self, message: Message) -> None:
        # (name, value as the message's policy fetches it, decoded text), in order.
        self.items = [(name, value, decoded(value)) for name, value in message.items()]
        self._by_name: dict[str, list[tuple[Any, str]]] = {}
        for name, value, text in self.items:
            self._by_name.setdefault(name.lower(), []).append((value, text))

    def first(self, name: str) -> Any:
        """The first value of header ``name`` as fetched (``message.get``), or None."""
        found = self._by_name.get(name.lower())
        return found[0][0] if found else None

    def texts(self, name: str) -> list[str]:
        """Every value of header ``name``, decoded."""
        return [text for _, text in self._by_name.get(name.lower(), ())]


def message_ids(values: Iterable[str]) -> list[str]:
    """Every ``<...>`` Message-ID in the values, in order."""
    found: list[str] = []
    for value in values:
        found.extend(m.group(0) for m in _MESSAGE_ID.finditer(value))
    return found


def first_message_id(value: Any) -> str | None:
    """The Message-ID in a Message-ID header; a bare id gets its angle brackets back."""
    if value is None:
        return None
    ids = message_ids([decoded(value).replace("\x00", "")])
    if ids:
        return ids[0]
    bare = str(value).strip()
    return f"<{bare}>" if bare and " " not in bare and len(bare) < 500 else None


def date_of(value: Any) -> datetime | None:
    """The Date header as an aware datetime, or None when missing or unreadable."""
    if value is None:
        return None
    try:
        moment = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else None
