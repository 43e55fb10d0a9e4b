"""Header values decoded to text whatever the sender did: RFC 2047 words, bad charsets, junk."""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable
from datetime import datetime
from email.header import Header, decode_header
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

from qa_mailer.parse.charsets import decode_with, guess_charset

_MESSAGE_ID = re.compile(r"<[^<>\s]{1,500}>")


# An RFC 2047 encoded word: charset (with an RFC 2231 language tail), B or Q, the text. Senders
# break the rules (spaces inside Q text, "?" in it): the text is matched lazily, on one line.
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?(.*?)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_QUOTED_BYTE = re.compile(rb"=([0-9A-Fa-f]{2})")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_HIGH_WORD = re.compile(rb"[^\s<>@,;:\"()]*[\x80-\xff][^\s<>@,;:\"()]*")
# Control characters have no place in a header's text: NUL goes, the others become a space
# (an encoded word that hides CR LF must not start a new line in a mail we write).
_BLANKS = re.compile(r" {2,}")
_CONTROLS = {code: " " for code in (*range(1, 9), *range(10, 32), 127)} | {0: None}


def decoded(value: Any) -> str:
    """A header value as text, RFC 2047 words decoded, never raising.

    What can be decoded is decoded, word by word: a word with broken base64 gives what its
    whole groups hold, a word in an unknown charset is guessed, and a word that gives nothing
    is kept as written. White space between two encoded words goes (RFC 2047, 6.2); white space
    between a word and plain text, folds included, stays.
    """
    if value is None:
        return ""
    text = raw_text(value)
    if text.isprintable():
        if "=?" not in text:
            return text
    else:
        text = _FOLD.sub("", text)
        if "=?" not in text:
            return text.translate(_CONTROLS)
    pieces: list[str] = []
    # Consecutive encoded words in one charset are joined before decoding: clients split a
    # multi-byte character across two words.
    pending: list[bytes] = []
    pending_charset = ""
    position = 0

    def flush() -> None:
        if pending:
            pieces.append(decode_with(b"".join(pending), pending_charset))
            pending.clear()

    for word in _ENCODED_WORD.finditer(text):
        between = text[position : word.start()]
        position = word.end()
        payload = _word_bytes(word.group(2), word.group(3))
        charset = word.group(1).split("*", 1)[0].lower()
        if payload is None:
            flush()
            pieces.extend((between, word.group(0)))
            continue
        if between and not (between.isspace() and pending):
            flush()
            pieces.append(between)
        if pending and charset != pending_charset:
            flush()
        pending.append(payload)
        pending_charset = charset
    flush()
    pieces.append(text[position:])
    text = "".join(pieces)
    # A line break hidden in an encoded word becomes one space, as a fold would.
    return text if text.isprintable() else _BLANKS.sub(" ", text.translate(_CONTROLS))


def raw_text(value: Any) -> str:
    """A header value as written, its 8-bit bytes read as text; encoded words left undecoded.

    The parser hands a header with raw 8-bit bytes (UTF-8 from a client that does not encode,
    or a code page) over as a ``Header`` whose ``str`` turns every such byte into U+FFFD:
    its bytes are taken back and decoded as a body of unknown charset would be.
    """
    if not isinstance(value, Header):
        return str(value)
    pieces: list[str] = []
    for chunk, charset in decode_header(value):
        if isinstance(chunk, str):
            pieces.append(chunk)
        elif charset in (None, "unknown-8bit"):
            # A header is short and half of it may be an address: the guess is made on its
            # words with high bytes alone.
            sample = b" ".join(_HIGH_WORD.findall(chunk))
            pieces.append(chunk.decode(guess_charset(sample) if sample else "ascii", "replace"))
        else:
            pieces.append(decode_with(chunk, charset))
    return "".join(pieces)


def _word_bytes(encoding: str, text: str) -> bytes | None:
    """The bytes of one encoded word's text, as much as can be read, or None when nothing can."""
    data = text.encode("ascii", "replace")
    if encoding in "qQ":
        return _QUOTED_BYTE.sub(lambda m: bytes([int(m.group(1), 16)]), data.replace(b"_", b" "))
    data = data.rstrip(b"=")
    if _NOT_BASE64.search(data):
        return None
    # A cut word: the whole groups of four decode, a lone trailing character cannot.
    data = data[: len(data) - len(data) % 4] if len(data) % 4 == 1 else data
    if not data:
        return None
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except binascii.Error:
        return None


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

    def all(self, name: str) -> list[Any]:
        """Every value of header ``name`` as fetched (``message.get_all``)."""
        return [value for value, _ in self._by_name.get(name.lower(), ())]

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
